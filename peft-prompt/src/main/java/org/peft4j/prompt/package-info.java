/**
 * Prompt tuning, P-tuning and prefix tuning.
 */
package org.peft4j.prompt;
