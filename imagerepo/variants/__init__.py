"""Image variants: thumbnails and format conversions of stored images (issue 12).

transform: the request model, its normal form and its limits (pure).
pipeline:  making a variant's bytes from a source image with libvips (pydicom for DICOM).
"""
