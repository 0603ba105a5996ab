// Rules, channels and silences of the Alerts page, with the metric catalog the editor picks from.
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { useAlertsApi } from '../api'
import type { CatalogMetric, Channel, ChannelOut, Rule, RuleOut, Silence, SilenceOut, TestResult } from '../api/alerts'
import { ApiError } from '../api/client'

const message = (e: unknown) => (e instanceof ApiError ? e.detail : (e as Error).message)

export const useAlertConfig = defineStore('alertConfig', () => {
  const rules = shallowRef<RuleOut[]>([])
  const channels = shallowRef<ChannelOut[]>([])
  const silences = shallowRef<SilenceOut[]>([])
  const catalog = shallowRef<CatalogMetric[]>([])
  const loading = ref(false)
  const error = ref<string | null>(null)
  const tests = ref<Record<string, TestResult | { error: string } | 'sending'>>({})

  async function load(): Promise<void> {
    loading.value = true
    error.value = null
    const api = useAlertsApi()
    try {
      const [r, c, s, cat] = await Promise.all([api.rules(), api.channels(), api.silences(), catalog.value.length ? catalog.value : api.catalog()])
      rules.value = r
      channels.value = c
      silences.value = s
      catalog.value = cat.filter((m) => m.kind !== 'info')
    } catch (e) {
      error.value = message(e)
    } finally {
      loading.value = false
    }
  }

  // writes throw (the editors show the reason next to the field) and reload the list on success
  async function saveRule(rule: Rule, create: boolean): Promise<RuleOut> {
    const saved = await useAlertsApi().saveRule(rule, create)
    rules.value = upsert(rules.value, saved, (x) => x.rule.id === saved.rule.id)
    return saved
  }

  async function deleteRule(id: string): Promise<void> {
    await useAlertsApi().deleteRule(id)
    rules.value = rules.value.filter((x) => x.rule.id !== id)
  }

  async function saveChannel(ch: Channel, create: boolean): Promise<ChannelOut> {
    const saved = await useAlertsApi().saveChannel(ch, create)
    channels.value = upsert(channels.value, saved, (x) => x.channel.id === saved.channel.id)
    return saved
  }

  async function deleteChannel(id: string): Promise<void> {
    await useAlertsApi().deleteChannel(id)
    channels.value = channels.value.filter((x) => x.channel.id !== id)
  }

  async function testChannel(id: string): Promise<void> {
    tests.value = { ...tests.value, [id]: 'sending' }
    let result: TestResult | { error: string }
    try {
      result = await useAlertsApi().testChannel(id)
    } catch (e) {
      result = { error: message(e) }
    }
    tests.value = { ...tests.value, [id]: result }
  }

  async function saveSilence(s: Silence, id?: string): Promise<SilenceOut> {
    const saved = await useAlertsApi().saveSilence(s, id)
    silences.value = upsert(silences.value, saved, (x) => x.id === saved.id)
    return saved
  }

  async function deleteSilence(id: string): Promise<void> {
    await useAlertsApi().deleteSilence(id)
    silences.value = silences.value.filter((x) => x.id !== id)
  }

  return {
    rules, channels, silences, catalog, loading, error, tests,
    load, saveRule, deleteRule, saveChannel, deleteChannel, testChannel, saveSilence, deleteSilence,
  }
})

function upsert<T>(list: T[], item: T, same: (x: T) => boolean): T[] {
  const i = list.findIndex(same)
  return i < 0 ? [...list, item] : list.map((x, j) => (j === i ? item : x))
}
