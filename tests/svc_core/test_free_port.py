"""svc_core.testing.free_port: what every test that starts a server asks for its port."""

from __future__ import annotations

from svc_core.testing import free_port


def test_free_port_never_hands_out_the_same_port_twice_before_it_is_bound():
    """A stack asks for a dozen ports before it binds any: two equal answers are an
    'address already in use' at its start (random picks gave one now and then)."""
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
    assert all(20000 <= p < 32000 for p in ports)  # below the ephemeral range
