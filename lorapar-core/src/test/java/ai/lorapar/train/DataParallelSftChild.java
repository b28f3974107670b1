package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.lorapar.engine.Collective;
import ai.lorapar.engine.Collectives;
import ai.lorapar.engine.DistributedEnv;

import java.io.DataOutputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * One rank of {@link DataParallelProcessGpuTest}: joins the job of the launcher's variables
 * ({@link Collectives#fromEnvironment}), runs {@link DataParallelSftTest#trainOn} and writes its parameters to
 * {@code rank<R>.params} in the working directory (per tensor: name, length, floats), then prints
 * {@code DONE rank R} and exits 0. Arguments: {@code gpu} (cuda:LOCAL_RANK) or {@code cpu}.
 */
public final class DataParallelSftChild {
    private DataParallelSftChild() {}

    public static void main(String[] args) throws Exception {
        boolean gpu = args.length > 0 && "gpu".equals(args[0]);
        Engine engine = Engine.getInstance();
        DistributedEnv env = DistributedEnv.fromEnvironment();
        Device device = gpu ? Device.gpu(env.localRank()) : Device.cpu();
        int code = 0;
        try (Collective c = Collectives.fromEnvironment(engine, device, env)) {
            Map<String, float[]> params = DataParallelSftTest.trainOn(c, device);
            try (OutputStream o = Files.newOutputStream(Path.of("rank" + c.rank() + ".params"));
                    DataOutputStream out = new DataOutputStream(o)) {
                out.writeInt(params.size());
                for (Map.Entry<String, float[]> e : params.entrySet()) {
                    out.writeUTF(e.getKey());
                    out.writeInt(e.getValue().length);
                    for (float v : e.getValue()) {
                        out.writeFloat(v);
                    }
                }
            }
            c.barrier();
            System.out.println("DONE rank " + c.rank());
        } catch (Throwable t) {
            t.printStackTrace(System.out);
            code = 1;
        }
        System.out.flush();
        System.exit(code);
    }
}
