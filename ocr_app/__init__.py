"""Applications of ``infer.OCR``: the command line (``ocr_app.cli``) and the web service
(``ocr_app.serve``)."""
