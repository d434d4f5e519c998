"""Labels of the rating vocabulary; the values are the core's :class:`~tarifa.core.rating.Rounding`."""

from tarifa.core.rating import Rounding
from tarifa.vocabulary import Labels

__all__ = ["ROUNDING_LABELS", "Rounding"]

ROUNDING_LABELS = Labels(Rounding, {Rounding.HALF_UP: "Half up", Rounding.UP: "Up", Rounding.DOWN: "Down"})
