package ai.lorapar.data;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A child JVM for the kill tests: saves adapter files into a folder with {@link AtomicFileSet}, as
 * {@code LoraModel.save} does (weights first, then config).
 *
 * <p>Arguments: {@code FOLDER HALT_AT NAME1 FILE1 NAME2 FILE2 [NAME1 FILE1 NAME2 FILE2]}. With
 * {@code HALT_AT} a step name ({@code AtomicFileSet.stepHook}), it saves the first file set once and halts the
 * JVM at that step ({@code Runtime.halt}: no finally blocks, no shutdown hooks, like kill -9). With
 * {@code loop}, it saves the first and the second set alternately until it is killed. It prints
 * {@code saving} before its first save.
 */
public final class AtomicFileSetChild {
    private AtomicFileSetChild() {}

    public static void main(String[] args) throws Exception {
        Path folder = Path.of(args[0]);
        String haltAt = args[1];
        Map<String, AtomicFiles.Bytes> first = files(args, 2);
        Map<String, AtomicFiles.Bytes> second = args.length > 6 ? files(args, 6) : first;
        if (!"loop".equals(haltAt)) {
            AtomicFileSet.stepHook = step -> {
                if (step.equals(haltAt)) {
                    Runtime.getRuntime().halt(137);
                }
            };
        }
        System.out.println("saving");
        System.out.flush();
        for (long i = 0; ; i++) {
            AtomicFileSet.write(folder, i % 2 == 0 ? first : second);
            if (!"loop".equals(haltAt)) {
                System.exit(3); // the step was never reached
            }
        }
    }

    private static Map<String, AtomicFiles.Bytes> files(String[] args, int from) throws Exception {
        Map<String, AtomicFiles.Bytes> files = new LinkedHashMap<>();
        for (int i = from; i < from + 4; i += 2) {
            byte[] bytes = Files.readAllBytes(Path.of(args[i + 1]));
            files.put(args[i], out -> AtomicFiles.writeFully(out, ByteBuffer.wrap(bytes)));
        }
        return files;
    }
}
