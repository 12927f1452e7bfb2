"""Task heads and necks that OpenMMLab does not provide."""
