/**
 * Bottleneck adapters (Houlsby, Pfeiffer, parallel) and IA3.
 */
package org.peft4j.adapter;
