"""Helpers the tests share (fixtures live in conftest.py)."""
import os

# `make mutation` runs each test once per mutant (HYPOTHESIS_PROFILE=mutation, conftest.py): there a property
# test tries at most this many examples, always the same ones (derandomized), and reports a failure without
# shrinking it.
MUTATION_EXAMPLES = 20


def examples(n: int) -> int:
    """A property test's number of examples: `n`, or fewer under mutation testing."""
    return min(n, MUTATION_EXAMPLES) if os.environ.get("HYPOTHESIS_PROFILE") == "mutation" else n
