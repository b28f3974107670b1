package ai.lorapar.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.lorapar.data.AtomicFileSet;
import ai.lorapar.data.AtomicFileSetChild;
import ai.lorapar.model.DecoderModel;
import com.google.common.hash.Hashing;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Re-saving an adapter into an existing folder is all-or-nothing under kill -9: a child JVM saving
 * adapter B over adapter A is killed at every step of the protocol and at random times, and the folder
 * always loads, as A or as B (both files from the same save).
 */
class AdapterSaveKillTest {
    @TempDir
    static Path tmp;
    static Path adapterA;
    static Path adapterB;

    /** Two adapters whose files cannot be mixed without the load failing (other modules, other rank). */
    @BeforeAll
    static void saveTwoAdapters() throws Exception {
        adapterA = tmp.resolve("a");
        adapterB = tmp.resolve("b");
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKV).rank(2)
                    .init(LoraInit.GAUSSIAN).seed(1).build(), m)) {
                lora.save(adapterA);
            }
            try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.GUD).rank(4)
                    .init(LoraInit.GAUSSIAN).seed(2).build(), m)) {
                lora.save(adapterB);
            }
        }
    }

    @Test
    void aSaveKilledAtAnyStepLeavesTheOldOrTheNewAdapter() throws Exception {
        List<String> steps = List.of("staged " + PeftAdapterFiles.WEIGHTS, "staged " + PeftAdapterFiles.CONFIG,
                "committed", "renamed " + PeftAdapterFiles.WEIGHTS, "renamed " + PeftAdapterFiles.CONFIG, "done");
        for (int i = 0; i < steps.size(); i++) {
            Path folder = freshCopyOfA("step" + i);
            Process child = child(folder, steps.get(i), adapterB);
            assertThat(child.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(child.exitValue()).as("child halted at '%s'", steps.get(i)).isEqualTo(137);
            String loaded = loadAndIdentify(folder);
            // before the journal is committed the old adapter stays; from then on the new one is completed
            assertThat(loaded).as("killed at '%s'", steps.get(i)).isEqualTo(i < 2 ? "A" : "B");
            assertThat(Files.exists(folder.resolve(AtomicFileSet.JOURNAL))).isFalse();
        }
    }

    @Test
    void aSaveLoopKilledAtRandomTimesAlwaysLeavesALoadableAdapter() throws Exception {
        Random random = new Random(14);
        Path folder = freshCopyOfA("random");
        List<String> seen = new ArrayList<>();
        for (int round = 0; round < 4; round++) {
            Process child = child(folder, "loop", adapterB, adapterA);
            try (BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(),
                    StandardCharsets.UTF_8))) {
                assertThat(out.readLine()).isEqualTo("saving");
                Thread.sleep(100 + random.nextInt(200)); // the first saves of a fresh JVM take ~100 ms
                child.destroyForcibly(); // SIGKILL
                child.waitFor(30, TimeUnit.SECONDS);
            }
            seen.add(loadAndIdentify(folder));
        }
        assertThat(seen).allMatch(s -> s.equals("A") || s.equals("B"));
    }

    private static Path freshCopyOfA(String name) throws Exception {
        Path folder = tmp.resolve(name);
        Files.createDirectories(folder);
        for (String f : List.of(PeftAdapterFiles.CONFIG, PeftAdapterFiles.WEIGHTS)) {
            Files.copy(adapterA.resolve(f), folder.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
        return folder;
    }

    private static Process child(Path folder, String haltAt, Path... sets) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("java.class.path"),
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=error", AtomicFileSetChild.class.getName(),
                folder.toString(), haltAt));
        for (Path set : sets) {
            for (String f : List.of(PeftAdapterFiles.WEIGHTS, PeftAdapterFiles.CONFIG)) {
                cmd.add(f);
                cmd.add(set.resolve(f).toString());
            }
        }
        return new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    }

    /** Loads the folder (which completes a committed save) and says which adapter both files are from. */
    private static String loadAndIdentify(Path folder) throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m);
                LoraModel lora = LoraModel.load(folder, model, m)) {
            assertThat(lora.config().rank()).isIn(2, 4);
        }
        String config = hash(folder.resolve(PeftAdapterFiles.CONFIG));
        String weights = hash(folder.resolve(PeftAdapterFiles.WEIGHTS));
        for (Path candidate : List.of(adapterA, adapterB)) {
            if (config.equals(hash(candidate.resolve(PeftAdapterFiles.CONFIG)))
                    && weights.equals(hash(candidate.resolve(PeftAdapterFiles.WEIGHTS)))) {
                return candidate == adapterA ? "A" : "B";
            }
        }
        return "mixed";
    }

    private static String hash(Path p) throws Exception {
        return Hashing.sha256().hashBytes(Files.readAllBytes(p)).toString();
    }
}
