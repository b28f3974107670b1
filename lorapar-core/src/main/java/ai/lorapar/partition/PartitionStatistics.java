package ai.lorapar.partition;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * Element counts of a partition, overall and broken down by module type (q/k/v/o/gate/up/down), by
 * layer and by LoRA matrix (A vs B). Shares are of the group's own element count.
 *
 * @param rows one row per group; the first is {@code all}
 */
public record PartitionStatistics(List<Row> rows) {

    /** Copies the rows. */
    public PartitionStatistics {
        rows = Collections.unmodifiableList(new ArrayList<>(rows));
    }

    /**
     * Counts for one group of elements.
     *
     * @param group "all", "module=q", "layer=3", "matrix=A", …
     * @param elements elements in the group
     * @param system1Kept kept at θ by System-1 importance
     * @param system2Kept kept at θ by System-2 importance
     * @param system1Only in S1 only
     * @param system2Only in S2 only
     * @param shared in both
     * @param stage1 trainable in stage 1
     * @param stage2 trainable in stage 2
     */
    public record Row(String group, long elements, long system1Kept, long system2Kept, long system1Only,
            long system2Only, long shared, long stage1, long stage2) {

        /** {@code count / elements}, 0 for an empty group. */
        public double share(long count) {
            return elements == 0 ? 0 : (double) count / elements;
        }

        Row plus(Row o) {
            return new Row(group, elements + o.elements, system1Kept + o.system1Kept, system2Kept + o.system2Kept,
                    system1Only + o.system1Only, system2Only + o.system2Only, shared + o.shared, stage1 + o.stage1,
                    stage2 + o.stage2);
        }

        Row named(String g) {
            return new Row(g, elements, system1Kept, system2Kept, system1Only, system2Only, shared, stage1, stage2);
        }
    }

    /** The row for all elements. */
    public Row total() {
        return rows.get(0);
    }

    /** The row of {@code group} ("module=q", "layer=0", "matrix=B"), or an error listing the groups. */
    public Row row(String group) {
        for (Row r : rows) {
            if (r.group().equals(group)) {
                return r;
            }
        }
        List<String> groups = new ArrayList<>();
        rows.forEach(r -> groups.add(r.group()));
        throw new IllegalArgumentException("no statistics group '" + group + "'; groups: " + groups);
    }

    /** A fixed-width table: counts and percentages of each group. */
    public String format() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%-12s %11s %15s %15s %15s %15s %15s %15s %15s%n", "group", "elements",
                "S1 kept", "S2 kept", "S1 only", "S2 only", "shared", "stage 1", "stage 2"));
        for (Row r : rows) {
            sb.append(String.format(Locale.ROOT, "%-12s %11d %s %s %s %s %s %s %s%n", r.group(), r.elements(),
                    cell(r, r.system1Kept()), cell(r, r.system2Kept()), cell(r, r.system1Only()),
                    cell(r, r.system2Only()), cell(r, r.shared()), cell(r, r.stage1()), cell(r, r.stage2())));
        }
        return sb.toString();
    }

    private static String cell(Row r, long count) {
        return String.format(Locale.ROOT, "%8d %5.1f%%", count, 100 * r.share(count));
    }
}
