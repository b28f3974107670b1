package ai.lorapar.split;

import ai.lorapar.data.LabelledExample;
import ai.lorapar.data.Example;

/** Progress of a {@link Splitter} run; the library never prints, hosts render progress from here. */
public interface SplitListener {

    /** An example has all its votes; called in input order from the thread that runs {@link Splitter#label}. */
    default void onExampleLabelled(LabelledExample example, int done, int total) {
    }

    /**
     * A teacher failed on an example after its retries; the vote is recorded as an abstention (not cached, so
     * a rerun asks again). Called from a worker thread.
     */
    default void onTeacherFailure(Example example, String teacherId, TeacherException failure) {
    }
}
