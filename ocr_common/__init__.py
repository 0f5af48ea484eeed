"""Pieces shared by the detector and the recogniser: fonts, text corpus, file I/O, weight files."""
