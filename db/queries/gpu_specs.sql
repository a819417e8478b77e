-- gpu_specs.sql: the GPU datasheet figures the cost reports quote (memory, bandwidth, peak matrix
-- rates), one row per GPU. `breakeven prices --table specs` runs this file.
--
-- Parameters: none.
--
-- Columns:
--   gpu                 the GPU as the catalog names it, e.g. 'H100 SXM5'
--   mem_gib             memory, GiB
--   hbm_tb_s            memory bandwidth, TB/s
--   bf16_dense_tflops   peak dense BF16 matrix rate, TFLOP/s (no sparsity)
--   fp8_dense_tflops    peak dense FP8 matrix rate, TFLOP/s; NULL where the GPU has no FP8
--   nvlink_gb_s         NVLink bandwidth per GPU, GB/s
--   tdp_w               board power, W
--   source              where the figures were read
SELECT gpu, mem_gib, hbm_tb_s, bf16_dense_tflops, fp8_dense_tflops, nvlink_gb_s, tdp_w, source
FROM gpu_specs
ORDER BY gpu COLLATE NOCASE, gpu;
