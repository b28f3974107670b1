package ai.lorapar.engine;

/** A child JVM for {@link MissingEngineTest}: starts the engine through the library and prints the outcome. */
public final class EngineMissingChild {
    private EngineMissingChild() {}

    public static void main(String[] args) {
        for (int i = 0; i < 2; i++) { // the second call reports the same, without trying again
            try {
                EngineSupport.requireEngine();
                System.out.println("engine started");
            } catch (IllegalStateException e) {
                System.out.println("FAILED: " + e.getMessage().replace('\n', ' '));
            }
        }
    }
}
