"""Building the term's course data set (instructors): the official archive read safely (``cifar_archive``), then
the 45,000 / 5,000 / 10,000 split with secretly remapped labels (``python -m course_data.build``)."""
