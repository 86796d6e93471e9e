"""The fuzzers' budget, their seed, and the services they run against.

The budget: ``--max-examples N`` (or ``SVC_FUZZ_MAX_EXAMPLES=N``) cases per operation and per
fuzz test; the default is CI's: seven services, every operation, positive and negative cases.
On two cores ``tests(fuzz)`` took 3 minutes on CI's machine and 11 on the development one, most
of it schemathesis building boundary-length strings for the long text fields while it collects.
``nox -s fuzz -- --max-examples 1000`` runs a larger campaign.

The seed: ``--fuzz-seed N`` (or ``SVC_FUZZ_SEED=N``). ``tests(fuzz)``, CI's run, uses the fixed
``CI_SEED``, so the same commit sends the same cases and a red run replays on any machine;
``nox -s fuzz`` passes ``--fuzz-seed random`` to explore new cases each run and prints the seed it
drew, so a finding replays with ``--fuzz-seed <that seed>``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from svc_core.testing import KeyPair
from tests.security.harness import Running, running_services

CI_MAX_EXAMPLES = 15
CI_SEED = 20261127
# this run's seed (pytest_configure sets it from --fuzz-seed, before the fuzz modules import)
SEED = CI_SEED
# The services' signing keys, made before collection: schemathesis builds some cases (and sets
# their access tokens) while it collects, before any fixture runs.
KEYS = KeyPair.generate()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--max-examples",
        type=int,
        default=int(os.environ.get("SVC_FUZZ_MAX_EXAMPLES", CI_MAX_EXAMPLES)),
        help="hypothesis examples per fuzzed operation (default: SVC_FUZZ_MAX_EXAMPLES or "
        f"{CI_MAX_EXAMPLES}, CI's budget)",
    )
    parser.addoption(
        "--fuzz-seed",
        default=os.environ.get("SVC_FUZZ_SEED", str(CI_SEED)),
        help=f"the fuzzers' seed: a number, or 'random' (default: SVC_FUZZ_SEED or {CI_SEED})",
    )


def max_examples(config: pytest.Config) -> int:
    # the option exists when tests/fuzz is named on the command line (its conftest is initial)
    chosen = config.getoption("--max-examples", default=None)
    return int(chosen or os.environ.get("SVC_FUZZ_MAX_EXAMPLES", CI_MAX_EXAMPLES))


def fuzz_seed(config: pytest.Config) -> int:
    chosen = str(config.getoption("--fuzz-seed", default=None) or CI_SEED)
    if chosen == "random":
        return random.SystemRandom().randrange(2**32)
    try:
        return int(chosen)
    except ValueError:
        raise pytest.UsageError(f"--fuzz-seed: a number or 'random', not {chosen!r}") from None


def pytest_configure(config: pytest.Config) -> None:
    global SEED
    SEED = fuzz_seed(config)
    settings.register_profile(
        "svc-fuzz",
        max_examples=max_examples(config),
        deadline=None,  # real sockets on a shared machine: no timing assertions
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,  # nothing written into the work tree; failures print their example
        derandomize=False,  # each fuzz follows SEED (schemathesis's config, @seed on the rest)
        print_blob=True,
    )
    settings.load_profile("svc-fuzz")


def pytest_report_header(config: pytest.Config) -> str:
    return f"fuzz: seed {SEED} (replay: --fuzz-seed {SEED}), {max_examples(config)} examples"


@pytest.fixture(scope="session")
def services() -> Iterator[Running]:
    """Every registered service, started once for the fuzz run."""
    with running_services(keys=KEYS) as running:
        yield running
