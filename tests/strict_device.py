"""A strict stand-in for CuPy, so the GPU code path is tested on machines without a GPU.

Test-only. With ``TINYLM_TEST_DEVICE=strict``, conftest.py hands this module to tinylm as
the array module of "cuda" (``backend.use_cuda_array_module``) and the ``device`` fixture
runs every test on "cuda". The arrays keep their values in host memory, but they refuse
what a CuPy array refuses, so code that passes here does not trip over the line between
host and device on a real GPU:

* No implicit conversion: ``numpy.asarray(a)`` and ``numpy.array(a)`` raise TypeError with
  CuPy's message. Explicit copies work: ``a.get()``, ``xp.asnumpy(a)``, ``a.item()``,
  ``a.tolist()``, and ``float(a)``, ``int(a)``, ``bool(a)`` of one element.
* No host array inside a device operation: a ``numpy.ndarray`` (0-d included) or a list
  among the operands of an element-wise function or operator raises TypeError
  ("Unsupported type ..."), and so does a host array given to any other function
  (concatenate, stack, matmul, einsum, ...). Python and NumPy scalars are fine.
* Host *index* arrays are copied to the device, as CuPy does: ``a[host_ids]``,
  ``a[host_ids] = host_values``, ``xp.take(a, host_ids)``, ``xp.add.at(a, host_ids, v)``.
  A host array assigned through a basic index (``a[1:3] = host_array``) raises ValueError.
* ``xp.asarray(host_array)`` copies to the device; ``xp.asarray(device_array)`` does not copy.
* Reductions and element indexing give 0-d device arrays, never NumPy scalars, and a 0-d
  array has no ``__index__`` (``range(a)`` and ``some_list[a]`` raise TypeError).
* ``xp.add.at`` refuses targets other than float16/32/64, int32 and uint32/64 (CuPy 13's
  atomic adds; int64 came in CuPy 14.1).
* ``xp.random.default_rng(seed)`` draws another stream than ``numpy.random.default_rng(seed)``,
  as a GPU generator does, and has only the methods of CuPy's ``Generator``.
* A view has a ``base``, the device array that owns its memory (``None`` for an owner), as
  CuPy's ``ndarray.base``: tinylm's version counters tell views from copies with it.
* Only names CuPy has exist (``xp.errstate``, ``xp.lib`` do not).
* NumPy functions called on device arrays dispatch here (``__array_ufunc__``,
  ``__array_function__``), as they dispatch to CuPy.

The behaviour is read from CuPy's sources (versions 13 and 14): ``cupy/_core/core.pyx``
(ndarray), ``_routines_indexing.pyx`` (indexing and scatter), ``_kernel.pyx`` and
``_scalar.pyx`` (what an element-wise kernel accepts), ``random/_generator_api.pyx``.
"""
from __future__ import annotations

import warnings
import weakref
from typing import Any

import numpy as np

IMPLICIT_CONVERSION = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array explicitly."
)

# Element-wise functions (NumPy ufuncs that CuPy has, plus where and clip): every operand
# must be a device array or a scalar.
ELEMENTWISE = {
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "negative", "positive", "power",
    "float_power", "remainder", "mod", "fmod", "absolute", "abs", "fabs", "rint", "sign", "exp", "exp2", "log",
    "log2", "log10", "expm1", "log1p", "sqrt", "square", "cbrt", "reciprocal", "sin", "cos", "tan", "arcsin",
    "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "hypot", "maximum",
    "minimum", "fmax", "fmin", "logaddexp", "logaddexp2", "greater", "greater_equal", "less", "less_equal",
    "equal", "not_equal", "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and",
    "bitwise_or", "bitwise_xor", "invert", "left_shift", "right_shift", "isfinite", "isinf", "isnan",
    "signbit", "copysign", "floor", "ceil", "trunc", "conjugate", "conj", "heaviside", "matmul", "where", "clip",
}
# Other functions of CuPy's namespace, with how many of their leading positional arguments
# are device data (None: all of them). A host array among the data is refused; the other
# arguments (shapes, axes, split points, pad widths, repeats) are host values in CuPy too.
FUNCTIONS: dict[str, int | None] = {
    **dict.fromkeys([
        "zeros_like", "ones_like", "empty_like", "full_like", "concatenate", "stack", "vstack", "hstack",
        "dstack", "split", "array_split", "sum", "mean", "var", "std", "max", "min", "amax", "amin", "argmax",
        "argmin", "prod", "cumsum", "cumprod", "all", "any", "nansum", "nanmax", "nanmin", "reshape", "ravel",
        "transpose", "swapaxes", "moveaxis", "expand_dims", "squeeze", "broadcast_to", "pad", "tril", "triu",
        "argwhere", "nonzero", "flatnonzero", "sort", "argsort", "unique", "count_nonzero", "bincount", "flip",
        "roll", "repeat", "tile", "diag", "diagonal", "trace", "around", "round", "copy", "cov", "median",
        "percentile", "histogram", "diff", "ascontiguousarray", "shape", "size", "ndim",
    ], 1),
    **dict.fromkeys(["dot", "vdot", "inner", "outer", "kron", "tensordot", "isclose", "allclose", "array_equal",
                     "searchsorted"], 2),
    **dict.fromkeys(["einsum", "broadcast_arrays", "atleast_1d", "atleast_2d", "meshgrid"], None),
}
INDEXING = {"take", "take_along_axis", "put"}  # (array, indices, ...): host indices are copied, as CuPy does
DATA_KEYWORDS = {"weights", "where", "values"}
CREATION = {"zeros", "ones", "empty", "full", "arange", "eye", "identity", "tri", "indices", "linspace", "logspace"}
NUMPY_NAMES = {  # NumPy's own objects, which CuPy re-exports
    "dtype", "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "intp", "intc",
    "float16", "float32", "float64", "complex64", "complex128", "integer", "floating", "number", "generic",
    "inexact", "signedinteger", "unsignedinteger", "complexfloating", "finfo", "iinfo", "promote_types",
    "issubdtype", "isscalar", "newaxis", "inf", "nan", "pi", "e",
}
SCALARS = (bool, int, float, complex, np.generic)


def _unsupported(value) -> TypeError:
    return TypeError(
        f"Unsupported type {type(value)} (strict device: a device operation got a host value; "
        "move it first with xp.asarray or Tensor.to(device))"
    )


def _host_operand(value):
    """An element-wise operand as a host array or scalar: device arrays and scalars only."""
    if isinstance(value, ndarray):
        return value._array
    if isinstance(value, SCALARS):
        return value
    raise _unsupported(value)


def _host_argument(value, data: bool):
    """An argument of a device function: device arrays unwrapped (also inside lists and
    tuples); a host array refused where the function wants ``data``, else kept."""
    if isinstance(value, ndarray):
        return value._array
    if isinstance(value, np.ndarray) and data:
        raise _unsupported(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_host_argument(item, data) for item in value)
    return value


def _host_arguments(args, kwargs, data_count: int | None, index_position: int | None = None):
    """Positional and keyword arguments of a device function, each unwrapped as it should be:
    the first ``data_count`` positional ones (all when None) and DATA_KEYWORDS are data, the
    one at ``index_position`` (and ``indices=``) an index."""
    host_args = [
        _host_index(value) if position == index_position
        else _host_argument(value, data=data_count is None or position < data_count)
        for position, value in enumerate(args)
    ]
    host_kwargs = {
        key: _host_index(value) if key == "indices" else _host_argument(value, data=key in DATA_KEYWORDS)
        for key, value in kwargs.items()
    }
    return host_args, host_kwargs


def _host_index(index):
    """An index: device arrays unwrapped, host index arrays and lists taken as CuPy copies them."""
    if isinstance(index, ndarray):
        return index._array
    if isinstance(index, tuple):
        return tuple(_host_index(item) for item in index)
    return index


def _is_advanced(index) -> bool:
    """Whether an index holds arrays or lists (advanced indexing) rather than ints and slices."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(item, (ndarray, np.ndarray, list)) or isinstance(item, (bool, np.bool_)) for item in items)


def _device(result, sources=()):
    """Results of a host computation as device arrays (0-d arrays for NumPy scalars); a
    result that is the host array of one of the ``sources`` is that device array itself
    (``a.astype(a.dtype, copy=False) is a``, as in CuPy)."""
    for source in sources:
        if isinstance(source, ndarray) and result is source._array:
            return source
    if isinstance(result, np.ndarray):
        return ndarray._wrap(result)
    if isinstance(result, np.generic):
        return ndarray._wrap(np.asarray(result))
    if isinstance(result, (tuple, list)):
        return type(result)(_device(item) for item in result)
    return result


def _out_argument(kwargs: dict) -> Any:
    """Unwrap ``out=`` (a device array, or a one-element tuple of one); returns the device array."""
    out = kwargs.get("out")
    if out is None:
        return None
    if isinstance(out, tuple):
        (out,) = out
    if not isinstance(out, ndarray):
        raise _unsupported(out)
    kwargs["out"] = out._array
    return out


class ufunc:
    """A CuPy ufunc: NumPy's, with device operands only; ``at`` and ``reduce`` as CuPy has them."""

    ATOMIC_ADD_DTYPES = {np.dtype(t) for t in ("float16", "float32", "float64", "int32", "uint32", "uint64")}

    def __init__(self, name: str):
        self.__name__ = name
        self._ufunc = getattr(np, name)

    def __repr__(self) -> str:
        return f"<ufunc '{self.__name__}' (strict device)>"

    def __call__(self, *inputs, **kwargs):
        out = _out_argument(kwargs)
        if "where" in kwargs:
            kwargs["where"] = _host_operand(kwargs["where"])
        result = self._ufunc(*(_host_operand(value) for value in inputs), **kwargs)
        return out if out is not None else _device(result)

    def at(self, target, indices, values=None) -> None:
        """``target[indices] op= values`` with repeated indices applied each time (CuPy: add, maximum, minimum)."""
        if self.__name__ not in ("add", "maximum", "minimum"):
            raise NotImplementedError(f"`{self.__name__}.at` is not supported yet")
        if not isinstance(target, ndarray):
            raise TypeError(f"{self.__name__}.at needs a device array to update, got {type(target)}")
        if self.__name__ == "add" and target.dtype not in self.ATOMIC_ADD_DTYPES:
            raise TypeError("cupy.add.at only supports int32, float16, float32, float64, uint32, uint64 as data type")
        if isinstance(values, np.ndarray) and not _is_advanced(indices):
            raise _unsupported(values)
        values = values._array if isinstance(values, ndarray) else values
        self._ufunc.at(target._array, _host_index(indices), values)

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        if self.__name__ not in ("add", "multiply"):
            raise NotImplementedError(f"`{self.__name__}.reduce` is not supported yet")
        kwargs = {"out": out} if out is not None else {}
        out = _out_argument(kwargs)
        result = self._ufunc.reduce(_host_operand(array), axis=axis, dtype=dtype, keepdims=keepdims, **kwargs)
        return out if out is not None else _device(result)

    def outer(self, a, b, **kwargs):
        return _device(self._ufunc.outer(_host_operand(a), _host_operand(b), **kwargs))


def _elementwise_function(name: str):
    """where and clip, which CuPy runs as element-wise kernels (numpy has them as functions)."""
    numpy_function = getattr(np, name)

    def function(*args, **kwargs):
        out = _out_argument(kwargs)
        result = numpy_function(*(_host_operand(value) if value is not None else None for value in args), **kwargs)
        return out if out is not None else _device(result)

    function.__name__ = name
    return function


def _device_function(name: str):
    numpy_function = getattr(np, name)
    data_count, index_position = (None, 1) if name in INDEXING else (FUNCTIONS[name], None)

    def function(*args, **kwargs):
        out = _out_argument(kwargs)
        host_args, host_kwargs = _host_arguments(args, kwargs, data_count, index_position)
        result = numpy_function(*host_args, **host_kwargs)
        return out if out is not None else _device(result, args)

    function.__name__ = name
    return function


def _creation_function(name: str):
    numpy_function = getattr(np, name)

    def function(*args, **kwargs):
        host_args, host_kwargs = _host_arguments(args, kwargs, data_count=0)
        return _device(numpy_function(*host_args, **host_kwargs))

    function.__name__ = name
    return function


_made: dict[str, Any] = {}


def function_named(name: str):
    """The module's function ``name``, made on first use; names CuPy lacks raise AttributeError."""
    if name in NUMPY_NAMES:
        return getattr(np, name)
    if name not in _made:
        if name in ELEMENTWISE and isinstance(getattr(np, name), np.ufunc):
            _made[name] = ufunc(name)
        elif name in ELEMENTWISE:
            _made[name] = _elementwise_function(name)
        elif name in FUNCTIONS or name in INDEXING:
            _made[name] = _device_function(name)
        elif name in CREATION:
            _made[name] = _creation_function(name)
        else:
            raise AttributeError(f"module 'cupy' has no attribute {name!r} (strict device: CuPy does not have it)")
    return _made[name]


def __getattr__(name: str):  # the module's attributes beyond those defined below (PEP 562)
    return function_named(name)


# ------------------------------------------------------------ moving data


def asarray(value, dtype=None):
    """A device array: host arrays, lists and scalars are copied to the device; a device
    array of the right dtype comes back as it is. A list of device arrays of one shape is
    stacked on the device; a list mixing them with anything else is refused (NumPy asks
    each device array for ``__array__``)."""
    if isinstance(value, ndarray):
        return value if dtype is None or np.dtype(dtype) == value.dtype else value.astype(dtype)
    if (isinstance(value, (list, tuple)) and value and all(isinstance(item, ndarray) for item in value)
            and len({item.shape for item in value}) == 1):
        value = np.stack([item._array for item in value])
    return ndarray._wrap(np.array(value, dtype=dtype, copy=True))


def array(value, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(value, ndarray):
        return ndarray._wrap(np.array(value._array, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    made = asarray(value, dtype)
    return made if ndmin <= made.ndim else made.reshape((1,) * (ndmin - made.ndim) + made.shape)


asanyarray = asarray


def asnumpy(value) -> np.ndarray:
    """The values as a host numpy array (what ``cupy.asnumpy`` does)."""
    return value.get() if isinstance(value, ndarray) else np.asarray(value)


def copyto(destination, source, casting="same_kind", where=True) -> None:
    """``cupy.copyto``: a host source may only be a single value."""
    if isinstance(source, np.ndarray):
        if source.size != 1:
            raise ValueError("non-scalar numpy.ndarray cannot be used for copyto")
        source = source.item()
    np.copyto(destination._array, _host_operand(source), casting=casting, where=_host_operand(where))


# ------------------------------------------------------------ the array


# id of a host array that owns its memory -> a weak reference to the device array holding it,
# so that ``view.base`` is that very device array (while it lives), as in CuPy
_owners: dict[int, weakref.ref] = {}


def _forget_owner(key: int, reference: weakref.ref) -> None:
    if _owners.get(key) is reference:
        del _owners[key]


class ndarray:
    """A device array: the values live in a host array that nothing outside this module sees."""

    __slots__ = ("_array", "__weakref__")
    __array_priority__ = 100  # as cupy.ndarray
    __hash__ = None

    def __init__(self, shape, dtype=float):
        self._array = np.empty(shape, dtype)
        self._register_if_owner()

    @classmethod
    def _wrap(cls, host: np.ndarray) -> "ndarray":
        made = object.__new__(cls)
        made._array = host
        made._register_if_owner()
        return made

    def _register_if_owner(self) -> None:
        if self._array.base is None:
            key = id(self._array)
            _owners[key] = weakref.ref(self, lambda reference, key=key: _forget_owner(key, reference))

    @property
    def base(self) -> "ndarray | None":
        """The device array that owns this view's memory; None when this array owns it."""
        owner = self._array.base
        if not isinstance(owner, np.ndarray):
            return None
        reference = _owners.get(id(owner))
        holder = reference() if reference is not None else None
        return holder if holder is not None and holder._array is owner else ndarray._wrap(owner)

    # ------------------------------------------------ attributes
    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    strides = property(lambda self: self._array.strides)
    flags = property(lambda self: self._array.flags)
    T = property(lambda self: ndarray._wrap(self._array.T))
    real = property(lambda self: ndarray._wrap(self._array.real))
    imag = property(lambda self: ndarray._wrap(self._array.imag))

    @property
    def __cuda_array_interface__(self) -> dict:
        return {
            "shape": self.shape, "typestr": self.dtype.str, "strides": None if self._array.flags.c_contiguous else self.strides,
            "data": (self._array.ctypes.data, False), "version": 3,
        }

    # ------------------------------------------------ explicit copies to the host
    def get(self, stream=None, order="C", out=None, blocking=True) -> np.ndarray:
        """A host copy of the values (the one way to a numpy array)."""
        if out is not None:
            out[...] = self._array
            return out
        return np.array(self._array, order=order, copy=True)

    def set(self, host: np.ndarray) -> None:
        """Copy a host array of the same shape and dtype into this one."""
        if not isinstance(host, np.ndarray) or host.shape != self.shape or host.dtype != self.dtype:
            raise ValueError("set() needs a numpy.ndarray of the same shape and dtype")
        self._array[...] = host

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self._array.item()

    def tolist(self) -> list:
        return self._array.tolist()

    def tobytes(self, order="C") -> bytes:
        return self._array.tobytes(order)

    def __reduce__(self):
        return asarray, (self.get(),)

    def __copy__(self) -> "ndarray":
        return ndarray._wrap(self._array.copy())

    def __deepcopy__(self, memo) -> "ndarray":
        return ndarray._wrap(self._array.copy())

    # ------------------------------------------------ refused: implicit conversion
    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT_CONVERSION)

    # ------------------------------------------------ one element to a Python number
    def __int__(self) -> int:
        return int(self._array)

    def __float__(self) -> float:
        return float(self._array)

    def __complex__(self) -> complex:
        return complex(self._array)

    def __bool__(self) -> bool:
        if self.size == 0:
            warnings.warn("The truth value of an empty array is ambiguous. Returning False", DeprecationWarning, stacklevel=2)
            return False
        if self.size > 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous. Use a.any() or a.all()")
        return bool(self._array)

    def __repr__(self) -> str:
        return repr(self._array)

    def __str__(self) -> str:
        return str(self._array)

    def __format__(self, format_spec: str) -> str:
        return format(self._array, format_spec)

    # ------------------------------------------------ containers and indexing
    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return len(self._array)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._array)))

    def __getitem__(self, index):
        return _device(self._array[_host_index(index)])

    def __setitem__(self, index, value) -> None:
        if isinstance(value, (np.ndarray, list)) and not _is_advanced(index) and np.ndim(value) > 0:
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        self._array[_host_index(index)] = value._array if isinstance(value, ndarray) else value

    def fill(self, value) -> None:
        if isinstance(value, ndarray):
            value = value._array
        elif np.ndim(value) > 0:
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        self._array.fill(value)

    def take(self, indices, axis=None, out=None):
        return function_named("take")(self, indices, axis=axis, out=out)

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        return _device(self._array.astype(dtype, order=order, copy=copy), (self,))

    def view(self, dtype=None):
        return ndarray._wrap(self._array.view() if dtype is None else self._array.view(dtype))

    def __eq__(self, other):
        if other is None or type(other).__eq__ is object.__eq__:  # CuPy: not comparable, so nowhere equal
            return function_named("zeros")(self.shape, dtype=np.bool_)
        return NotImplemented if _defers_to(other) else function_named("equal")(self, other)

    def __ne__(self, other):
        if other is None or type(other).__eq__ is object.__eq__:
            return function_named("ones")(self.shape, dtype=np.bool_)
        return NotImplemented if _defers_to(other) else function_named("not_equal")(self, other)

    # ------------------------------------------------ NumPy functions dispatch here, as to CuPy
    def __array_ufunc__(self, numpy_ufunc, method, *inputs, **kwargs):
        try:
            function = function_named(numpy_ufunc.__name__)
        except AttributeError:
            return NotImplemented
        if method != "__call__":
            function = getattr(function, method, None)
            if function is None:
                return NotImplemented
        operands = inputs + tuple(kwargs.get("out", ()))
        if not all(isinstance(value, (ndarray, np.ndarray) + SCALARS) for value in operands):
            return NotImplemented
        return function(*inputs, **kwargs)

    def __array_function__(self, numpy_function, types, args, kwargs):
        if numpy_function.__module__ != "numpy" or not all(issubclass(t, (ndarray, np.ndarray)) for t in types):
            return NotImplemented
        try:
            function = function_named(numpy_function.__name__)
        except AttributeError:
            return NotImplemented
        return function(*args, **kwargs)


def _defers_to(other) -> bool:
    """Whether ``device_array OP other`` should leave the operation to ``other`` (CuPy's
    ``_should_use_rop``): ``other`` opted out of ufuncs, or has a higher array priority."""
    other_ufunc = getattr(type(other), "__array_ufunc__", _defers_to)
    if other_ufunc is not _defers_to:
        return other_ufunc is None
    return getattr(other, "__array_priority__", 0) > ndarray.__array_priority__


def _operator(name: str, reflected: bool = False, in_place: bool = False):
    def method(self, other):
        if not in_place and _defers_to(other):
            return NotImplemented
        operation = function_named(name)
        if in_place:
            return operation(self, other, out=self)
        return operation(other, self) if reflected else operation(self, other)

    return method


for _name, _ufunc_name in {
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide", "floordiv": "floor_divide",
    "mod": "remainder", "pow": "power", "matmul": "matmul", "and": "bitwise_and", "or": "bitwise_or",
    "xor": "bitwise_xor", "lshift": "left_shift", "rshift": "right_shift",
}.items():
    setattr(ndarray, f"__{_name}__", _operator(_ufunc_name))
    setattr(ndarray, f"__r{_name}__", _operator(_ufunc_name, reflected=True))
    setattr(ndarray, f"__i{_name}__", _operator(_ufunc_name, in_place=True))
for _name, _ufunc_name in {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal"}.items():
    setattr(ndarray, f"__{_name}__", _operator(_ufunc_name))
for _name, _ufunc_name in {"neg": "negative", "pos": "positive", "abs": "absolute", "invert": "invert"}.items():
    setattr(ndarray, f"__{_name}__", lambda self, _ufunc_name=_ufunc_name: function_named(_ufunc_name)(self))

# The methods of cupy.ndarray that compute: NumPy's, with how many of their leading
# arguments are device data (None: all), as in FUNCTIONS; put's first argument is an index.
METHODS: dict[str, int | None] = {
    **dict.fromkeys(["sum", "mean", "var", "std", "max", "min", "argmax", "argmin", "prod", "cumsum", "cumprod",
                     "all", "any", "copy", "reshape", "ravel", "flatten", "transpose", "swapaxes", "squeeze",
                     "repeat", "nonzero", "sort", "argsort", "argpartition", "partition", "diagonal", "trace",
                     "round", "conj", "conjugate"], 0),
    **dict.fromkeys(["dot", "choose", "compress"], 1),
    **dict.fromkeys(["clip", "put"], None),
}
for _name, _data_count in METHODS.items():
    def _method(self, *args, _name=_name, _data_count=_data_count, **kwargs):
        out = _out_argument(kwargs)
        host_args, host_kwargs = _host_arguments(args, kwargs, _data_count, 0 if _name == "put" else None)
        result = getattr(self._array, _name)(*host_args, **host_kwargs)
        return out if out is not None else _device(result, (self,))

    _method.__name__ = _name
    setattr(ndarray, _name, _method)


# ------------------------------------------------------------ random numbers


class Generator:
    """``cupy.random.Generator``: only its methods, drawn from a stream NumPy's generator does not share."""

    def __init__(self, seed=None):
        self._rng = np.random.Generator(np.random.Philox(seed))

    @staticmethod
    def _float_dtype(dtype) -> np.dtype:
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"cupy.random.Generator draws float32 or float64, got {dtype}")
        return dtype

    @staticmethod
    def _drawn(values, out):
        if out is None:
            return ndarray._wrap(np.asarray(values))
        out[...] = ndarray._wrap(np.asarray(values))
        return out

    def random(self, size=None, dtype=np.float64, out=None):
        size = out.shape if out is not None else size
        return self._drawn(self._rng.random(size, dtype=self._float_dtype(dtype)), out)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        size = out.shape if out is not None else size
        return self._drawn(self._rng.standard_normal(size, dtype=self._float_dtype(dtype)), out)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        drawn = self._rng.uniform(float(low), float(high), size)
        return ndarray._wrap(np.asarray(drawn, dtype=self._float_dtype(dtype)))

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        low, high = (0, int(low)) if high is None else (int(low), int(high))
        return ndarray._wrap(np.asarray(self._rng.integers(low, high, size, dtype=dtype, endpoint=endpoint)))


class random:
    """``cupy.random``: the generator API."""

    Generator = Generator

    @staticmethod
    def default_rng(seed=None) -> Generator:
        return Generator(seed)

