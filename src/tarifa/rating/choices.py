from django.db import models


class Rounding(models.TextChoices):
    HALF_UP = "half_up", "Half up"
    UP = "up", "Up"
    DOWN = "down", "Down"
