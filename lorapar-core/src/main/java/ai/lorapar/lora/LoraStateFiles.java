package ai.lorapar.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.AtomicFiles;
import ai.lorapar.io.SafetensorsFile;
import ai.lorapar.io.SafetensorsWriter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The native state of a {@link LoraModel}: A and B of every adapter and, for residual initialisations
 * (PiSSA, OLoRA), A₀ and B₀, all fp32, in one safetensors file. Unlike the PEFT export this keeps the
 * factors as they are trained, so a run can resume exactly.
 */
final class LoraStateFiles {
    private static final Logger LOG = LoggerFactory.getLogger(LoraStateFiles.class);
    static final String FORMAT = "lorapar-lora-state";

    private LoraStateFiles() {}

    static void write(Path file, LoraModel lora) throws IOException {
        withContent(lora, content -> AtomicFiles.write(file, content));
    }

    /** What {@link #withContent} hands the state file's bytes to (they are valid only during the call). */
    interface ContentSink {
        void accept(AtomicFiles.Bytes content) throws IOException;
    }

    /** The state file's bytes (A, B and A₀, B₀ on the host), handed to {@code sink} while they are valid. */
    static void withContent(LoraModel lora, ContentSink sink) throws IOException {
        try (NDManager s = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            for (LoraLayer l : lora.layers().values()) {
                tensors.put(l.module() + ".lora_A", host(l.a(), s));
                tensors.put(l.module() + ".lora_B", host(l.b(), s));
                if (l.initialA() != null) {
                    tensors.put(l.module() + ".lora_A0", host(l.initialA(), s));
                    tensors.put(l.module() + ".lora_B0", host(l.initialB(), s));
                }
            }
            LoraConfig c = lora.config();
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("format", FORMAT);
            meta.put("rank", Integer.toString(c.rank()));
            meta.put("alpha", Double.toString(c.alpha()));
            meta.put("init", c.init().name());
            meta.put("config", c.toString());
            sink.accept(SafetensorsWriter.content(tensors, meta));
        }
    }

    private static NDArray host(NDArray a, NDManager s) {
        NDArray d = a.stopGradient();
        NDArray h = d.toDevice(Device.cpu(), true);
        if (d != h) {
            d.close();
        }
        h.attach(s);
        return h;
    }

    static void read(Path file, LoraModel lora) throws IOException {
        if (lora.isMerged()) {
            throw new IllegalStateException("cannot load LoRA state into merged adapters: unmerge() first");
        }
        try (SafetensorsFile f = SafetensorsFile.open(file);
                NDManager s = lora.model().manager().newSubManager()) {
            if (!FORMAT.equals(f.metadata().get("format"))) {
                throw new AdapterFormatException(file + ": not a LoRA state file (metadata format is "
                        + f.metadata().get("format") + ", expected " + FORMAT + ")");
            }
            Set<String> unexpected = new TreeSet<>(LoraTensorName.NATURAL_ORDER);
            unexpected.addAll(f.names());
            Map<LoraLayer, NDArray[]> loaded = new LinkedHashMap<>();
            for (LoraLayer l : lora.layers().values()) {
                boolean residual = l.initialA() != null;
                String m = l.module();
                if (residual != f.contains(m + ".lora_A0")) {
                    throw new AdapterFormatException(file + ": module '" + m + "' " + (residual
                            ? "has no lora_A0/lora_B0, but this LoraModel's " + lora.config().init() + " init keeps them"
                            : "has lora_A0/lora_B0, but this LoraModel's " + lora.config().init() + " init has none"));
                }
                NDArray[] arrays = new NDArray[residual ? 4 : 2];
                arrays[0] = tensor(f, m + ".lora_A", l.a(), s, file);
                arrays[1] = tensor(f, m + ".lora_B", l.b(), s, file);
                if (residual) {
                    arrays[2] = tensor(f, m + ".lora_A0", l.initialA(), s, file);
                    arrays[3] = tensor(f, m + ".lora_B0", l.initialB(), s, file);
                }
                unexpected.removeAll(Set.of(m + ".lora_A", m + ".lora_B", m + ".lora_A0", m + ".lora_B0"));
                loaded.put(l, arrays);
            }
            if (!unexpected.isEmpty()) {
                throw new AdapterFormatException(file + ": tensor '" + unexpected.iterator().next()
                        + "' belongs to no adapter of this LoraModel (" + unexpected.size() + " such tensor(s))");
            }
            // everything checked: now change the adapters
            for (Map.Entry<LoraLayer, NDArray[]> e : loaded.entrySet()) {
                LoraLayer l = e.getKey();
                NDArray[] a = e.getValue();
                copyInto(l.a(), a[0]);
                copyInto(l.b(), a[1]);
                if (a.length == 4 && !(l.initialA().contentEquals(a[2]) && l.initialB().contentEquals(a[3]))) {
                    // other initial factors (e.g. an SVD on another device): move the residual base with them
                    LOG.warn("{}: A0/B0 differ from this LoraModel's; recomputing W - scaling*B0*A0 (rounds once)",
                            l.module());
                    l.restoreBase();
                    copyInto(l.initialA(), a[2]);
                    copyInto(l.initialB(), a[3]);
                    try (NDManager t = s.newSubManager()) {
                        NDArray p = a[3].matMul(a[2]);
                        p.attach(t);
                        NDArray scaled = p.mul(l.scaling()).toType(l.linear().weight().getDataType(), false);
                        scaled.attach(t);
                        l.linear().weight().subi(scaled);
                    }
                }
            }
        }
    }

    private static NDArray tensor(SafetensorsFile f, String key, NDArray like, NDManager s, Path file)
            throws IOException {
        if (!f.contains(key)) {
            throw new AdapterFormatException(file + ": missing tensor '" + key + "'");
        }
        if (!f.info(key).shape().equals(like.getShape())) {
            throw new AdapterFormatException(file + ": tensor '" + key + "' has shape " + f.info(key).shape()
                    + ", this LoraModel's has " + like.getShape());
        }
        NDArray a = f.loadAs(key, s, DataType.FLOAT32);
        NDArray d = a.toDevice(like.getDevice(), false);
        d.attach(s);
        return d;
    }

    /** {@code dst ← src} in place, exactly (the array, its views and its gradient flag stay). */
    static void copyInto(NDArray dst, NDArray src) {
        dst.set(new NDIndex("..."), src);
    }
}
