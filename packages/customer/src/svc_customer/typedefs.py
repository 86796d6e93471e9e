"""Typed keys for what the customer service keeps on its application."""

from __future__ import annotations

from aiohttp import web

from svc_customer.domain import Services

SERVICES: web.AppKey[Services] = web.AppKey("customer_services")
