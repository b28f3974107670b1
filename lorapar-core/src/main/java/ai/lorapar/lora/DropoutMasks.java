package ai.lorapar.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Reproducible dropout masks from a counter-based hash, computed with int64 NDArray ops on the
 * device: the mask of a call depends only on its key (seed, layer, call number), never on the
 * engine's global generator, so it is the same whatever else draws random numbers and on every device.
 *
 * <p>Per element index i: x = (i + k₁) mod p, then twice x ← (a·x + c) mod p, x ← x⁵ mod p
 * (p = 2³¹ − 1; x ↦ x⁵ is a permutation of ℤ/p since gcd(5, p − 1) = 1, so every step is a bijection
 * and the output is uniform on [0, p)). Every product stays below 2⁶² and cannot overflow int64.
 * An element is kept when x ≥ rate·p.
 */
final class DropoutMasks {
    static final long P = 2147483647L;
    private static final long A1 = 1103515245L;
    private static final long A2 = 1664525L * 1000 + 13;

    private DropoutMasks() {}

    /** splitmix64's finaliser, reduced mod p: spreads nearby keys far apart. */
    static long mixKey(long seed, long stream, long call) {
        long z = seed * 0x9E3779B97F4A7C15L + stream * 0xBF58476D1CE4E5B9L + call * 0x94D049BB133111EBL;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z = z ^ (z >>> 31);
        return Math.floorMod(z, P);
    }

    /**
     * The inverted-dropout multiplier for an array of {@code shape}: 1/(1 − rate) where kept, 0 where
     * dropped; fp32 on {@code manager}'s device, attached to {@code manager}.
     */
    static NDArray scaledKeepMask(NDManager manager, Shape shape, double rate, long key) {
        long n = shape.size();
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("dropout on " + shape + ": more than 2^31 elements in one call");
        }
        long k1 = Math.floorMod(key, P);
        long k2 = Math.floorMod(key * 31 + 7, P);
        try (NDManager s = manager.newSubManager()) {
            NDArray x = s.arange(0, (int) n, 1, DataType.INT64).add(k1).mod(P);
            x = pow5(x.mul(A1).add(k2).mod(P));
            x = pow5(x.mul(A2).add(12345L).mod(P));
            long threshold = (long) Math.floor(rate * P);
            NDArray keep = x.gte(threshold).toType(DataType.FLOAT32, false).mul((float) (1.0 / (1.0 - rate)));
            NDArray out = keep.reshape(shape);
            out.attach(manager);
            return out;
        }
    }

    private static NDArray pow5(NDArray x) {
        NDArray x2 = x.mul(x).mod(P);
        NDArray x4 = x2.mul(x2).mod(P);
        return x4.mul(x).mod(P);
    }
}
