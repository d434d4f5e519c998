"""The customer self-care portal (``/portal/``): server-rendered pages for a customer's own user.

Closed by default: every view goes through :func:`tarifa.portal.access.customer_view`, which
requires a logged-in customer user and hands the view its customer; every query starts from that
customer (``tarifa.portal.scope``), so another tenant's id is a 404. docs/portal.md.
"""
