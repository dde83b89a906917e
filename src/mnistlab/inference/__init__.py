"""A trained run applied to new images: photos converted like the training data, predictions."""
