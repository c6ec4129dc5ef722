"""Fixtures for the ape tests: the compiled project deployed on the anvil that ape-foundry runs."""

import pytest

from chain.deploy import ProtocolParams

PARAMS = ProtocolParams.local()


@pytest.fixture(scope="module")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="module")
def treasury(accounts):
    return accounts[9]


@pytest.fixture(scope="module")
def compute(project, admin, treasury):
    return admin.deploy(project.ComputeRental, admin, treasury, PARAMS.compute_tuple())


@pytest.fixture(scope="module")
def market(project, admin, treasury):
    return admin.deploy(project.PromptMarketplace, admin, treasury, PARAMS.delivery_window)
