"""Where tools.dataset downloads the course data from. Generated from course_config.py by
`python -m publishing.data_source write`: do not edit by hand."""

TERM = 'fall2026'

FILES = {
    'trainval': {
        'filename': 'cifar10_trainval_fall2026.zip',
        'url': 'https://courses.example.edu/hw2/data/cifar10_trainval_fall2026.zip',
        'sha256': None,
    },
    'test': {
        'filename': 'cifar10_test_fall2026.zip',
        'url': 'https://courses.example.edu/hw2/data/cifar10_test_fall2026.zip',
        'sha256': None,
    },
}
