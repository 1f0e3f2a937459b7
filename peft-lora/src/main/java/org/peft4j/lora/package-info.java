/**
 * LoRA, rsLoRA and DoRA adapters, merge/unmerge, multi-adapter models and Hugging Face PEFT adapter folders.
 */
package org.peft4j.lora;
