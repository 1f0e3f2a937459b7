package org.peft4j.core.peft;

import java.util.List;
import java.util.Map;

/**
 * A {@link PeftConfig} stored in AdapterHub's layout ({@link AdapterHubLayout}) instead of PEFT's:
 * its {@code config} block and, for an AdapterFusion, the adapters it fuses.
 */
public interface AdapterHubConfig {

    /** The {@code config} object of {@code adapter_config.json} / {@code adapter_fusion_config.json}. */
    Map<String, Object> configBlock();

    /** True for an AdapterFusion ({@code adapter_fusion_config.json}), false for an adapter. */
    boolean isFusion();

    /** The fused adapters' names, in fusion order (empty for an adapter). */
    List<String> fusedAdapters();
}
