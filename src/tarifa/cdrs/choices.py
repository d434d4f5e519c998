"""Labels of the CDR vocabulary. The values are the core's enums (one vocabulary: the rating code,
the models and the admin compare the same members); they are re-exported here for the models."""

from tarifa.core.cdr import Direction, Disposition
from tarifa.core.rating import RatingStatus
from tarifa.vocabulary import Labels

__all__ = ["DIRECTION_LABELS", "DISPOSITION_LABELS", "RATING_STATUS_LABELS", "Direction", "Disposition", "RatingStatus"]

DIRECTION_LABELS = Labels(Direction, {Direction.OUTBOUND: "Outbound", Direction.INBOUND: "Inbound"})

DISPOSITION_LABELS = Labels(
    Disposition,
    {
        Disposition.ANSWERED: "Answered",
        Disposition.BUSY: "Busy",
        Disposition.NO_ANSWER: "No answer",
        Disposition.FAILED: "Failed",
        Disposition.CANCELLED: "Cancelled",
    },
)

RATING_STATUS_LABELS = Labels(
    RatingStatus,
    {
        RatingStatus.PENDING: "Pending",
        RatingStatus.RATED: "Rated",
        RatingStatus.UNRATED: "Unratable",
        RatingStatus.FORBIDDEN: "Forbidden",
    },
)
