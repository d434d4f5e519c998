from django.db import models


class RoutingPolicy(models.TextChoices):
    LEAST_COST = "least_cost", "Least cost"
    PRIORITY = "priority", "Priority"
    WEIGHTED = "weighted", "Weighted load balance"


class Transport(models.TextChoices):
    UDP = "udp", "UDP"
    TCP = "tcp", "TCP"
    TLS = "tls", "TLS"
