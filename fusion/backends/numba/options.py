"""The numba compile options of every kernel: one policy, in one place.

* ``cache=True``: compiled machine code is written to numba's cache directory and loaded by the
  next process (see the package docstring for where that directory is and how to move it).
* ``error_model="numpy"``: division by zero gives inf/nan as in numpy instead of raising, and
  it lets LLVM vectorise loops that divide (the Python model adds a zero check per element).
* No ``fastmath``: NaN and inf must behave exactly as in numpy. The float reductions alone
  allow reassociation (``REDUCE``), which changes summation order but not NaN/inf semantics.
* ``nogil=True``: kernels release the GIL, so Python threads can run them side by side.
"""

SERIAL = dict(cache=True, error_model="numpy", nogil=True)
PARALLEL = dict(SERIAL, parallel=True)
#: Float sums may be reassociated (vectorised with several partial sums); nothing else.
REDUCE = dict(SERIAL, fastmath={"reassoc"})
REDUCE_PARALLEL = dict(REDUCE, parallel=True)
