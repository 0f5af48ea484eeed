"""The shared layer, importing no model package: geometry of text lines, image I/O and result
files, drawing, weight files, the JAX runtime set-up; for training, fonts, the text corpus,
textures and degradations."""
