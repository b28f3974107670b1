package ai.lorapar.engine;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A project that depends on the library without a native engine (as a new developer's first try did) gets
 * an error naming the artifact to add, not DJL's "Failed to save pytorch index file" alone.
 */
class MissingEngineTest {
    @TempDir
    Path emptyCache;

    @Test
    void aMissingNativeLibrarySaysWhichArtifactToAdd() throws Exception {
        String full = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        String withoutNatives = Arrays.stream(full.split(File.pathSeparator))
                .filter(e -> !e.contains("pytorch-native-")).collect(Collectors.joining(File.pathSeparator));
        assertThat(withoutNatives).isNotEqualTo(full); // the test classpath had the CPU natives
        ProcessBuilder pb = new ProcessBuilder(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:TieredStopAtLevel=1", "-Dai.djl.offline=true", "-Dorg.slf4j.simpleLogger.defaultLogLevel=off",
                "-cp", withoutNatives, EngineMissingChild.class.getName()));
        pb.environment().put("DJL_CACHE_DIR", emptyCache.toString()); // no libtorch cached by earlier runs
        pb.environment().put("ENGINE_CACHE_DIR", emptyCache.toString());
        pb.environment().remove("PYTORCH_LIBRARY_PATH");
        pb.redirectErrorStream(true);
        Process child = pb.start();
        String out = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(child.waitFor(60, TimeUnit.SECONDS)).isTrue();
        List<String> failures = out.lines().filter(l -> l.startsWith("FAILED: ")).toList();
        assertThat(failures).as(out).hasSize(2);
        assertThat(failures.get(0)).contains("no PyTorch native library is on the classpath")
                .contains("ai.djl.pytorch:pytorch-native-cpu:2.7.1 with classifier " + EngineSupport.platformClassifier())
                .contains("<artifactId>pytorch-native-cpu</artifactId>")
                .contains("DJL said:");
        assertThat(failures.get(1)).isEqualTo(failures.get(0));
    }

    @Test
    void theMessageNamesTheArtifactOrTheMismatch() {
        Object outcome = EngineSupport.start(() -> {
            throw new ai.djl.engine.EngineException("Failed to save pytorch index file",
                    new java.io.IOException("Offline mode is enabled"));
        });
        assertThat(outcome).isInstanceOf(IllegalStateException.class);
        assertThat(((Exception) outcome).getMessage())
                .contains("pytorch-native-cpu").contains("Failed to save pytorch index file")
                .contains("Offline mode is enabled");
        assertThat(EngineSupport.missingEngineMessage(new RuntimeException("x"), true))
                .contains("although a pytorch-native jar is on the classpath");
        assertThat(EngineSupport.start(ai.djl.engine.Engine::getInstance)).isInstanceOf(ai.djl.engine.Engine.class);
        assertThat(EngineSupport.requireEngine().getEngineName()).isEqualTo("PyTorch");
    }
}
