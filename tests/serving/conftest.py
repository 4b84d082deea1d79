"""The server's guarantees (payloads, explain, overload, hostile and slow clients, metrics) hold for every
form of the model it can serve: the tests that ask for `runtime` run once per runtime."""
import pytest

from helpers.serving import SERVED_FORMS


@pytest.fixture(scope="module", params=sorted(SERVED_FORMS))
def runtime(request):
    return request.param
