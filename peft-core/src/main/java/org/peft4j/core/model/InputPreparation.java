package org.peft4j.core.model;

/**
 * What a {@link HeadModel} runs on its {@link BackboneInputs} before the backbone: a prompt
 * method's virtual tokens or key/value prefix. Installed by {@code PeftModel} when its method
 * acts on inputs ({@code PeftMethod.preparesInputs}), removed on unload.
 */
public interface InputPreparation {

    /** The inputs the backbone runs on (the user's inputs with virtual tokens / prefix added). */
    BackboneInputs prepare(Backbone backbone, BackboneInputs inputs);

    /**
     * Tokens the preparation put into the KV caches itself on an earlier call (a soft prompt fed
     * once before the first generated token): the caller's attention mask does not count them.
     * 0 when the caches are empty.
     */
    long virtualTokensInCache(long cachedTokens);
}
