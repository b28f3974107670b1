package ai.lorapar.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

import java.util.Objects;

/**
 * A frozen linear layer addressed by its Hugging Face module name (for example
 * {@code model.layers.0.self_attn.q_proj}): {@code y = x·Wᵀ + b}, plus the output of an optional
 * {@link LinearAdapter} while adapters are enabled. The weight ({@code [out, in]}, compute dtype) and
 * the bias belong to the model, which closes them; an adapter owns its own parameters.
 */
public final class Linear {
    private final String name;
    private final NDArray weight;
    private final NDArray bias;
    private volatile LinearAdapter adapter;
    private volatile boolean adapterEnabled = true;

    Linear(String name, NDArray weight, NDArray bias) {
        this.name = Objects.requireNonNull(name);
        this.weight = Objects.requireNonNull(weight);
        this.bias = bias;
    }

    /** The Hugging Face module name, without {@code .weight}. */
    public String name() {
        return name;
    }

    /** The frozen weight, shape {@code [outFeatures, inFeatures]}. Do not modify or close it. */
    public NDArray weight() {
        return weight;
    }

    /** The frozen bias ({@code [outFeatures]}), or null. */
    public NDArray bias() {
        return bias;
    }

    /**
     * Input features.
     *
     * @return the number of columns of the weight
     */
    public long inFeatures() {
        return weight.getShape().get(1);
    }

    /**
     * Output features.
     *
     * @return the number of rows of the weight
     */
    public long outFeatures() {
        return weight.getShape().get(0);
    }

    /** The adapter, or null. */
    public LinearAdapter adapter() {
        return adapter;
    }

    /** Installs (or, with null, removes) the adapter. The caller keeps ownership of its parameters. */
    public void setAdapter(LinearAdapter adapter) {
        this.adapter = adapter;
    }

    /** Whether an installed adapter takes part in {@link #forward}. */
    public boolean isAdapterEnabled() {
        return adapterEnabled;
    }

    /** Enables or disables the adapter without removing it (a reference policy = base model). */
    public void setAdapterEnabled(boolean enabled) {
        this.adapterEnabled = enabled;
    }

    /** The base output without any adapter (one fused {@code linear} op). The caller closes the result. */
    public NDArray forwardBase(NDArray x) {
        return linear(x, weight, bias);
    }

    /** {@code x·Wᵀ + b} as one op (torch's {@code linear}, the bias fused into the matrix product). */
    static NDArray linear(NDArray x, NDArray weight, NDArray bias) {
        return ai.djl.nn.core.Linear.linear(x, weight, bias).singletonOrThrow();
    }

    /** {@code x·Wᵀ + b (+ adapter delta)}; {@code x} is {@code [..., inFeatures]}. The caller closes the result. */
    public NDArray forward(NDArray x, boolean training) {
        NDArray y = forwardBase(x);
        if (!hasActiveAdapter()) {
            return y; // no dtype query: that would be one more JNI call per layer
        }
        NDArray delta = delta(x, training, y.getDataType());
        if (delta == null) {
            return y;
        }
        try {
            NDArray out = y.add(delta);
            y.close();
            return out;
        } finally {
            delta.close();
        }
    }

    /** Whether an adapter is installed and enabled. */
    boolean hasActiveAdapter() {
        return adapter != null && adapterEnabled;
    }

    /**
     * The inference factors of the adapter's term ({@link LinearAdapter#inferenceFactors}): none when no
     * adapter is installed and enabled, null when the adapter has no low-rank form.
     */
    LinearAdapter.LowRankFactors inferenceFactors() {
        LinearAdapter a = adapter;
        if (a == null || !adapterEnabled) {
            return LinearAdapter.LowRankFactors.none();
        }
        return a.inferenceFactors(this);
    }

    /**
     * The enabled adapter's term for input {@code x}, cast to {@code dtype}, or null when no adapter is
     * installed and enabled (or it returned null). The caller closes the result.
     */
    NDArray delta(NDArray x, boolean training, DataType dtype) {
        LinearAdapter a = adapter;
        if (a == null || !adapterEnabled) {
            return null;
        }
        NDArray delta = a.delta(this, x, training);
        if (delta == null || delta.getDataType() == dtype) {
            return delta;
        }
        NDArray cast = delta.toType(dtype, false);
        if (cast != delta) {
            delta.close();
        }
        return cast;
    }

    @Override
    public String toString() {
        return "Linear[" + name + ", " + inFeatures() + "->" + outFeatures() + (bias != null ? ", bias" : "")
                + (adapter != null ? ", adapter" + (adapterEnabled ? "" : " (disabled)") : "") + "]";
    }
}
