package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Op count of a decode step, without a GPU: during sampling on CPU the model's debugging probe counts
 * the arrays every layer creates (each NDArray op that returns an array makes one; the two in-place
 * KV-cache writes come on top). On a GPU each op is a JNI call and most a kernel launch, so this is
 * the number that bounds decoding speed at small batch.
 */
class DecodeOpCountTest {
    /** Arrays created per layer per decode step (one new token), sampling with top-k/top-p off. */
    static double decodeOpsPerLayer(String fixture) throws Exception {
        AtomicLong layers = new AtomicLong();
        AtomicLong arrays = new AtomicLong();
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(Fixtures.model(fixture), m)) {
            DecoderModel.probe = (i, tokens, created) -> {
                if (tokens == 1) {
                    layers.incrementAndGet();
                    arrays.addAndGet(created);
                }
            };
            try {
                new Generator(model).generate(List.of(new long[] {256, 1, 2, 3}, new long[] {256, 5}),
                        SamplingConfig.sample(6, 1.0, 3).withStopTokenIds(List.of()).withPadTokenId(0));
            } finally {
                DecoderModel.probe = null;
            }
        }
        assertThat(layers.get()).isPositive();
        return (double) arrays.get() / layers.get();
    }

    @Test
    void decodeStepOpsPerLayer() throws Exception {
        for (String fixture : new String[] {"qwen2", "llama"}) {
            double ops = decodeOpsPerLayer(fixture);
            System.err.printf("OPS %s: %.1f arrays created per layer per decode step (+2 in-place cache writes)%n",
                    fixture, ops);
            assertThat(ops).isLessThan(1000);
        }
    }
}
