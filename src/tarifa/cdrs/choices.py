from django.db import models


class Direction(models.TextChoices):
    OUTBOUND = "outbound", "Outbound"
    INBOUND = "inbound", "Inbound"


class Disposition(models.TextChoices):
    ANSWERED = "answered", "Answered"
    BUSY = "busy", "Busy"
    NO_ANSWER = "no_answer", "No answer"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class RatingStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RATED = "rated", "Rated"
    UNRATED = "unrated", "Unratable"
    FORBIDDEN = "forbidden", "Forbidden"
