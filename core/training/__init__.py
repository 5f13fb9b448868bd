"""Training, evaluating and predicting with a checkpoint, and the simple MFCC baseline a model must beat."""
