"""The only kit code a student's process can read: it loads the student's extracted notebooks and hands the
objects the hidden checks need to the judge as exported programs (``exports/``), each compared with the live
object it came from. Nothing here decides a verdict; nothing here is secret."""
