"""Typed application keys of the payment service."""

from __future__ import annotations

from aiohttp import web

from svc_payment.providers import PaymentProvider
from svc_payment.settings import PaymentSettings

SETTINGS: web.AppKey[PaymentSettings] = web.AppKey("payment_settings", PaymentSettings)
PROVIDER: web.AppKey[PaymentProvider] = web.AppKey("payment_provider")
