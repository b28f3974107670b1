package ai.lorapar.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.model.LinearAdapter.LowRankFactors;

import java.util.List;

/**
 * The enabled adapters of a model, frozen for inference when a {@link KvCache} is made: per fused
 * projection (q/k/v, gate/up) the parts' low-rank factors are joined into one {@code A} (rows stacked)
 * and one block-diagonal {@code B} with the scalings folded in, so the projection's adapter term is two
 * matrix products instead of five ops per part. Decoding with a cache uses them; training passes and
 * passes without a cache use the adapters themselves. A cache therefore decodes with the adapters as
 * they were when it was made (its keys and values were computed with those).
 *
 * <p>Each group is one of: no adapter term (null here, {@link #NO_TERM} to the projection), a
 * {@link Product}, or {@link #DYNAMIC} (an adapter without low-rank factors: its {@code delta} is
 * called as usual).
 */
final class FrozenAdapters {
    /** Marks a group whose adapters have no low-rank form: the projection calls their deltas. */
    static final Product DYNAMIC = new Product(null, null);

    /** Marks a group without an adapter term: the plain product. */
    static final Product NO_TERM = new Product(null, null);

    /** The frozen groups of one decoder layer (null = no adapter term). */
    record LayerGroups(Product qkv, Product o, Product gateUp, Product down) {}

    private final LayerGroups[] layers;

    private FrozenAdapters(LayerGroups[] layers) {
        this.layers = layers;
    }

    /** The groups of layer {@code i}, or null when it has no adapter term (all plain products). */
    LayerGroups layer(int i) {
        return layers == null ? null : layers[i];
    }

    /**
     * Freezes the adapters of {@code parts} (per layer: q, k, v, o, gate, up, down) into arrays of
     * {@code manager}. With no adapter term anywhere the result has no groups: every projection is then
     * plain, even if adapters are enabled after the cache was made.
     */
    static FrozenAdapters freeze(List<Linear[]> parts, NDManager manager) {
        LayerGroups[] out = new LayerGroups[parts.size()];
        boolean any = false;
        for (int i = 0; i < out.length; i++) {
            Linear[] p = parts.get(i);
            Product qkv = group(manager, p[0], p[1], p[2]);
            Product o = group(manager, p[3]);
            Product gu = group(manager, p[4], p[5]);
            Product down = group(manager, p[6]);
            if (qkv != null || o != null || gu != null || down != null) {
                out[i] = new LayerGroups(qkv, o, gu, down);
                any = true;
            }
        }
        return new FrozenAdapters(any ? out : null);
    }

    private static Product group(NDManager manager, Linear... parts) {
        LowRankFactors[] f = new LowRankFactors[parts.length];
        long rank = 0;
        for (int i = 0; i < parts.length; i++) {
            f[i] = parts[i].inferenceFactors();
            if (f[i] == null) {
                return DYNAMIC;
            }
            if (!f[i].isNone()) {
                rank += f[i].a().getShape().get(0);
            }
        }
        if (rank == 0) {
            return null;
        }
        try (NDManager tmp = manager.newSubManager()) {
            NDList as = new NDList();
            NDList rows = new NDList();
            long before = 0;
            for (int i = 0; i < parts.length; i++) {
                long out = parts[i].outFeatures();
                if (f[i].isNone()) {
                    rows.add(tmp.zeros(new Shape(out, rank), DataType.FLOAT32));
                    continue;
                }
                long r = f[i].a().getShape().get(0);
                // detached copies: an optimizer step on the adapter must not reach a cache made before it
                NDArray ad = f[i].a().stopGradient();
                ad.attach(tmp);
                NDArray a = ad.toType(DataType.FLOAT32, true);
                a.attach(tmp);
                as.add(a);
                NDArray scale = tmp.create(f[i].scaling());
                NDArray bd = f[i].b().stopGradient();
                bd.attach(tmp);
                NDArray b = bd.toType(DataType.FLOAT32, false);
                b.attach(tmp);
                NDList row = new NDList();
                if (before > 0) {
                    row.add(tmp.zeros(new Shape(out, before), DataType.FLOAT32));
                }
                row.add(b.mul(scale));
                if (rank - before - r > 0) {
                    row.add(tmp.zeros(new Shape(out, rank - before - r), DataType.FLOAT32));
                }
                rows.add(row.size() == 1 ? row.get(0) : NDArrays.concat(row, 1));
                before += r;
            }
            NDArray aJoined = as.size() == 1 ? as.get(0) : NDArrays.concat(as, 0);
            NDArray bBlock = rows.size() == 1 ? rows.get(0) : NDArrays.concat(rows, 0);
            aJoined.attach(manager);
            bBlock.attach(manager);
            return new Product(aJoined, bBlock);
        }
    }

    /**
     * A group's frozen adapter term {@code (x·Aᵀ)·Bᵀ}: A {@code [Σr, in]}, B {@code [Σout, Σr]} block-diagonal
     * with the scalings folded in (zero rows for parts without a term), fp32.
     */
    record Product(NDArray a, NDArray b) {
        /** {@code y + ((x·Aᵀ)·Bᵀ)} in {@code y}'s dtype, the product computed in fp32 (as the adapters do). */
        NDArray addTo(NDArray y, NDArray x) {
            NDManager out = y.getManager();
            try (NDManager s = out.newSubManager()) {
                NDArray x32 = x.getDataType() == DataType.FLOAT32 ? x : x.toType(DataType.FLOAT32, false);
                x32.attach(s);
                NDArray h = Linear.linear(x32, a, null);
                h.attach(s);
                NDArray d = Linear.linear(h, b, null);
                d.attach(s);
                NDArray dy = d.getDataType() == y.getDataType() ? d : d.toType(y.getDataType(), false);
                dy.attach(s);
                NDArray sum = y.add(dy);
                sum.attach(out);
                return sum;
            }
        }
    }
}
