"""
Studies: investigations of sb3-boom beside the product (fidelity to the authors' code, precision, speed),
each with a documented purpose, a test, and its findings on the Validation page (docs/validation.md).

Not part of the installed package: run them from a checkout of the repository.
"""
