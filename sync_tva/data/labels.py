"""Label sets per data set, as named constants (index order is the class index)."""

__all__ = ["MELD_LABELS", "IEMOCAP_LABELS"]

# MELD's 7 emotions, in the order of the field's feature files.
MELD_LABELS: tuple[str, ...] = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")

# IEMOCAP's usual 6-class set, in the order of the IEMOCAP feature pickles.
IEMOCAP_LABELS: tuple[str, ...] = ("happy", "sad", "neutral", "angry", "excited", "frustrated")
