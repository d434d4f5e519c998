"""Enumerations of the routing app; the routing policy is the core's (``tarifa.core.routes``)."""

from django.db import models

from tarifa.core.routes import RoutingPolicy
from tarifa.vocabulary import Labels

__all__ = ["ROUTING_POLICY_LABELS", "RoutingPolicy", "Transport"]

ROUTING_POLICY_LABELS = Labels(
    RoutingPolicy,
    {
        RoutingPolicy.LEAST_COST: "Least cost",
        RoutingPolicy.PRIORITY: "Priority",
        RoutingPolicy.WEIGHTED: "Weighted load balance",
    },
)


class Transport(models.TextChoices):
    UDP = "udp", "UDP"
    TCP = "tcp", "TCP"
    TLS = "tls", "TLS"
