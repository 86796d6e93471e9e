"""What the customer service is: registration, login, RS256 tokens, sessions and profiles. It
alone holds the key that signs access tokens, and audits every sign-in, lockout, logout, refresh
token reuse and password change."""

from __future__ import annotations

from svc_core import Audit, Auth, Mongo, Redis, Service
from svc_customer.parts import PARTS
from svc_customer.repository import INDEXES
from svc_customer.settings import CustomerSettings
from svc_customer.views import routes

service = Service(
    name="customer",
    port=3002,
    settings=CustomerSettings,
    routes=routes,
    uses=[Mongo(INDEXES), Redis(), Auth(), Audit()],
    parts=PARTS,
    signs_tokens=True,
)
create_app = service.create_app
