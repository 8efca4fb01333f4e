"""PyTorch's default CPU random generator, in NumPy.

`TorchGenerator(seed)` draws what `torch.manual_seed(seed)` and the same torch calls would draw, so
bigram.py's run replays without torch:

    gen = TorchGenerator(1337)                                   # torch.manual_seed(1337)
    table = gen.normal_(np.empty((65, 65), np.float32))          # nn.Embedding(65, 65) init
    starts = gen.randint(len(split) - block_size, (batch_size,)) # get_batch's torch.randint
    next_ids = gen.multinomial(probs, num_samples=1)             # generate's torch.multinomial

Every draw reads one stream of 32-bit words of a Mersenne Twister (at::mt19937, the same
recurrence as np.random.MT19937) seeded with the seed's low 32 bits, in element order:

    randint           1 word per element (2 words when high - low >= 2**28)
    normal_, >= 16    1 word per element, then 16 more when the size is not a multiple of 16
    normal_, < 16     4 words per pair of elements (Box-Muller in float64, one value cached)
    multinomial       2 words per probability (an Exp(1) draw for each, then argmax(p / q))

The bits are torch's on any x86-64 CPU: integer work, + - * / and sqrt are correctly rounded
IEEE operations; torch's float64 log1p, sin and cos are libm's, so they are called through
`math` (same libm, same CPU dispatch), never np.log1p/np.sin/np.cos (NumPy's own SIMD kernels
may differ in the last bit); normal_ on >= 16 float32 values copies torch's AVX2 kernel (Cephes
polynomials of avx_mathfun.h with the wheel's fused multiply-adds, each fma exact: `_fma32`),
which the wheel also runs on AVX-512 CPUs.

It matches torch 2.13.0's PyPI CPU wheel on Linux x86-64 with glibc (AVX2 and AVX-512 hosts).
It may differ in the last bits (and rarely in a token) on CPUs without AVX2,
ATEN_CPU_CAPABILITY=default, ARM, another libm, or torch builds with other FMA contractions;
other torch versions switch randint to 64-bit words at 2**32, or draw exponential_ from MKL.
"""

import math

import numpy as np

DEFAULT_SEED = 67280421310721  # torch.Generator()'s seed (c10's default_rng_seed_val)
STATE_WORDS = 624  # MT19937's state: 624 words, then a twist
F32 = np.float32
NORMAL_CHUNK = 2**16  # values drawn and transformed at a time by normal_: a multiple of 16


class TorchGenerator:
    """torch's CPU generator (at::CPUGeneratorImpl): an MT19937 stream and a cached normal value."""

    def __init__(self, seed=DEFAULT_SEED):
        self._mt = np.random.MT19937()
        self.manual_seed(seed)

    def manual_seed(self, seed):
        """torch.manual_seed(seed) (CPUGeneratorImpl::set_current_seed): seed in [-2**63, 2**64),
        negatives wrapped mod 2**64; state[0] = seed mod 2**32 and
        state[j] = 1812433253 * (state[j-1] ^ (state[j-1] >> 30)) + j mod 2**32 (init_genrand);
        the first draw twists. Also forgets the cached normal value. Returns the generator."""
        if not -(2**63) <= seed < 2**64:
            raise OverflowError(f"seed {seed} is outside [-2**63, 2**64)")
        self._seed = seed % 2**64
        word = self._seed % 2**32
        key = [word]
        for j in range(1, STATE_WORDS):
            word = (1812433253 * (word ^ (word >> 30)) + j) % 2**32
            key.append(word)
        self._set_stream(key, STATE_WORDS)
        self._next_normal = None
        return self

    def _set_stream(self, key, pos):
        """Point the MT19937 at state words `key`, `pos` being the index of the next one to read."""
        key = np.array(key, np.uint32)
        self._mt.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}}

    def get_state(self):
        """The state as a JSON-serialisable dict: seed, key (624 words), pos (624: twist first),
        next_normal (the cached normal value or None)."""
        mt = self._mt.state["state"]
        return {"seed": self._seed, "key": mt["key"].tolist(), "pos": int(mt["pos"]),
                "next_normal": self._next_normal}

    def set_state(self, state):
        """Restore a `get_state()` dict: the next draws continue exactly where that one left off."""
        self._seed = state["seed"]
        self._set_stream(state["key"], state["pos"])
        self._next_normal = state["next_normal"]

    def _words64(self, count):
        """The next `count` 64-bit values, each (first word << 32) | second word (random64)."""
        pairs = self._mt.random_raw(2 * count).reshape(count, 2)
        return (pairs[:, 0] << np.uint64(32)) | pairs[:, 1]

    def _uniform_float32(self, count):
        """uniform_real_distribution<float>(0, 1): (word & (2**24 - 1)) * 2**-24, exact."""
        return (self._mt.random_raw(count) & (2**24 - 1)).astype(F32) * F32(2**-24)

    def _uniform_float64(self, count):
        """uniform_real_distribution<double>(0, 1): (random64 & (2**53 - 1)) * 2**-53, exact."""
        return (self._words64(count) & (2**53 - 1)).astype(np.float64) * 2.0**-53

    def randint(self, *bounds_and_size):
        """randint(high, size) or randint(low, high, size) -> int64 array, as torch.randint.

        uniform_int_from_to_distribution (DistributionsHelper.h, TransformationHelper.h): with
        span = high - low, each element is (word % span) + low, word being one 32-bit output when
        span < 2**28, else one random64; the sum wraps like C's uint64 arithmetic."""
        *bounds, size = bounds_and_size
        low, high = (0, *bounds) if len(bounds) == 1 else bounds
        span = int(high) - int(low)
        if span <= 0:
            raise ValueError(f"randint needs low < high, got low={low}, high={high}")
        shape = (size,) if isinstance(size, int) else tuple(size)
        count = math.prod(shape)
        words = self._mt.random_raw(count) if span < 2**28 else self._words64(count)
        values = words % np.uint64(span) + np.uint64(int(low) % 2**64)
        return values.view(np.int64).reshape(shape)

    def integers(self, low, high, size):
        """randint(low, high, size) under the name of NumPy's Generator.integers, so code that
        draws from a NumPy generator (npbigram.get_batch) draws torch's numbers from this one."""
        return self.randint(low, high, size)

    def normal_(self, array):
        """Fill a C-contiguous float32 array in place with N(0, 1) values, as tensor.normal_(0, 1)
        or torch.randn (normal_kernel, aten/src/ATen/native/cpu/DistributionTemplates.h).

        Size >= 16 (normal_fill): one float32 uniform per element, then Box-Muller on each whole
        block of 16 (`_box_muller_16`); if size % 16 != 0, 16 new uniforms replace the last 16
        values and are transformed the same way. Size < 16: each value is `_normal_float64()` + 0.0
        (torch's value * std + mean, turning -0.0 into +0.0) rounded to float32. Returns array."""
        if array.dtype != F32 or not array.flags.c_contiguous:
            raise TypeError("normal_ fills C-contiguous float32 arrays")
        values = array.reshape(-1)
        size = values.size
        if size < 16:
            values[:] = [self._normal_float64() + 0.0 for _ in range(size)]
            return array
        for start in range(0, size, NORMAL_CHUNK):  # the same words, in bounded memory
            values[start:start + NORMAL_CHUNK] = self._uniform_float32(
                min(NORMAL_CHUNK, size - start))
        whole = size - size % 16
        for start in range(0, whole, NORMAL_CHUNK):  # each block of 16 on its own
            chunk = values[start:min(start + NORMAL_CHUNK, whole)]
            chunk[:] = _box_muller_16(chunk.reshape(-1, 16)).reshape(-1)
        if size % 16:
            values[-16:] = _box_muller_16(self._uniform_float32(16).reshape(1, 16)).reshape(-1)
        return array

    def _normal_float64(self):
        """normal_distribution<double>(0, 1) (DistributionsHelper.h): the cached value if there is
        one; else Box-Muller on two 53-bit uniforms u1, u2: r = sqrt(-2 log1p(-u2)),
        theta = 2 pi u1; cache r sin(theta), return r cos(theta). manual_seed clears the cache."""
        if self._next_normal is not None:
            value, self._next_normal = self._next_normal, None
            return value
        u1, u2 = self._uniform_float64(2).tolist()
        radius = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        self._next_normal = radius * math.sin(theta)
        return radius * math.cos(theta)

    def _exponential(self, count):
        """exponential_(1) (cpu/DistributionTemplates.h): -log1p(-u) in float64 with libm's
        log1p, u a 53-bit uniform (2 words each)."""
        negated = (-self._uniform_float64(count)).tolist()
        return -np.fromiter(map(math.log1p, negated), np.float64, count)

    def multinomial(self, probs, num_samples):
        """torch.multinomial(probs, num_samples=1) for (V,) or (B, V) probabilities -> int64 of
        shape (1,) or (B, 1) (multinomial_out's fast path, aten/src/ATen/native/Distributions.cpp):
        q holds an Exp(1) draw per probability in row-major order, rounded to probs' dtype; the
        choice is argmax(probs / q) along the last axis (division in probs' dtype, first maximum
        wins)."""
        if num_samples != 1:
            raise NotImplementedError("only num_samples=1 is mirrored")
        probs = np.asarray(probs)
        if probs.ndim not in (1, 2):
            raise ValueError("multinomial takes a (V,) or (B, V) array")
        q = self._exponential(probs.size).astype(probs.dtype).reshape(probs.shape)
        with np.errstate(divide="ignore", invalid="ignore"):  # q = 0 (u = 0): p / q is inf or NaN,
            ratios = probs / q  # and argmax, like torch's, takes the first NaN as the maximum
        return np.argmax(ratios, axis=-1, keepdims=True).astype(np.int64)


# ------------------------- torch's AVX2 Box-Muller (NormalFill16<float>) -------------------------

# Cephes single-precision constants, as avx_mathfun.h spells them.
SQRT_HALF = F32(0.707106781186547524)
LOG_POLY = [F32(c) for c in (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
                             1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
                             3.3333331174e-1)]
LN2_LOW, LN2_HIGH = F32(-2.12194440e-4), F32(0.693359375)  # ln 2 = LN2_HIGH + LN2_LOW
FOUR_OVER_PI = F32(1.27323954473516)
PI_OVER_4_PARTS = [F32(0.78515625), F32(2.4187564849853515625e-4), F32(3.77489497744594108e-8)]
SIN_POLY = [F32(c) for c in (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)]
COS_POLY = [F32(c) for c in (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)]


def _fma32(a, b, c):
    """float32 a * b + c rounded once, like the vfmadd instructions. a * b is exact in float64;
    the sum's rounding error is found exactly (TwoSum) and the float64 sum is rounded to odd (last
    bit set when inexact), after which rounding to float32 is correct (53 >= 24 + 2 bits)."""
    product = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    addend = np.asarray(c, np.float64)
    total = product + addend
    addend_seen = total - product
    error = (product - (total - addend_seen)) + (addend - addend_seen)
    to_odd = (error != 0) & (total.view(np.int64) % 2 == 0)
    return np.where(to_odd, np.nextafter(total, np.copysign(np.inf, error)), total).astype(F32)


def _log_avx2(x):
    """log256_ps (avx_mathfun.h, Cephes logf) for float32 x in (0, 1] (so its NaN and denormal
    guards never fire), with the fused multiply-adds of torch 2.13's x86-64 wheel.

    x = m * 2**e, m in [0.5, 1); if m < sqrt(1/2): e -= 1, t = 2m - 1, else t = m - 1.
    y = t * P(t) evaluated by Horner's rule with fma; y = fma(y, t*t, e * LN2_LOW);
    y = fma(t*t, -0.5, y); log x = fma(e, LN2_HIGH, t + y)."""
    bits = x.view(np.int32)
    exponent = ((bits >> 23) - 126).astype(F32)
    mantissa = ((bits & ~0x7F800000) | 0x3F000000).view(F32)
    small = mantissa < SQRT_HALF
    exponent = exponent - small.astype(F32)
    t = (mantissa - F32(1)) + np.where(small, mantissa, F32(0))
    t_squared = t * t
    y = np.full_like(t, LOG_POLY[0])
    for coefficient in LOG_POLY[1:]:
        y = _fma32(y, t, coefficient)
    y = _fma32(y * t, t_squared, exponent * LN2_LOW)
    y = _fma32(t_squared, F32(-0.5), y)
    return _fma32(exponent, LN2_HIGH, t + y)


def _sincos_avx2(theta):
    """sincos256_ps (avx_mathfun.h, Cephes sinf/cosf) for float32 theta in [0, 2 pi), with the
    fused multiply-adds of torch 2.13's x86-64 wheel.

    j = trunc(theta * 4/pi) rounded up to even; x = theta - j * pi/4 in three fma steps (pi/4 split
    in three parts); with z = x*x: cos poly = fma(z, z * C(z), -(z * 0.5)) + 1, sin poly =
    fma(x, z * S(z), x). Octants with j & 2 swap the polynomials; sin is negated when j & 4,
    cos when (j - 2) & 4 == 0."""
    octant = ((theta * FOUR_OVER_PI).astype(np.int32) + 1) & ~1
    j = octant.astype(F32)
    x = theta
    for part in PI_OVER_4_PARTS:
        x = _fma32(j, -part, x)
    z = x * x
    cos_poly = _fma32(_fma32(COS_POLY[0], z, COS_POLY[1]), z, COS_POLY[2])
    cos_poly = _fma32(z, cos_poly * z, -(z * F32(0.5))) + F32(1)
    sin_poly = _fma32(_fma32(SIN_POLY[0], z, SIN_POLY[1]), z, SIN_POLY[2])
    sin_poly = _fma32(x, sin_poly * z, x)
    swapped = (octant & 2) != 0
    sin = np.where(swapped, cos_poly, sin_poly)
    cos = np.where(swapped, sin_poly, cos_poly)
    sin = np.where((octant & 4) != 0, -sin, sin)
    cos = np.where(((octant - 2) & 4) == 0, -cos, cos)
    return sin, cos


def _box_muller_16(blocks):
    """NormalFill16<float> (cpu/DistributionTemplates.h, AVX2) on rows of 16 float32 uniforms:
    pairs u = row[j], v = row[j + 8] for j < 8; radius = sqrt(-2 log(1 - u)), theta = 2 pi v;
    row[j] = radius cos(theta), row[j + 8] = radius sin(theta), each through fma(n, std=1,
    mean=0), which is n + 0 (turning -0.0 into +0.0)."""
    radius = np.sqrt(F32(-2) * _log_avx2(F32(1) - blocks[:, :8]))
    sin, cos = _sincos_avx2(F32(2 * math.pi) * blocks[:, 8:])
    return np.concatenate([radius * cos, radius * sin], axis=1) + F32(0)
