/**
 * The sub-region partition (paper §3.3): {@link ai.lorapar.partition.SubregionPartition} keeps, per
 * system, the smallest set of top-ranked elements holding a share θ of the total importance, splits
 * them into System-1-only, System-2-only and shared regions ({@link ai.lorapar.partition.Region}), and
 * builds the two stages' element masks ({@link ai.lorapar.partition.StageMasks}), with statistics by
 * module, layer and matrix ({@link ai.lorapar.partition.PartitionStatistics}) and the random baseline.
 */
package ai.lorapar.partition;
