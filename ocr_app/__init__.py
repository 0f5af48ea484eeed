"""Applications of ``infer.OCR``: the command line (``ocr_app.cli``)."""
