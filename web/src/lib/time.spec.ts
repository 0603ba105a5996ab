import { describe, expect, it } from 'vitest'
import { axisTimes, chartTime } from './time'

describe('chart time labels', () => {
  // two ticks 5 minutes apart, then one on the next day (local time of the test machine)
  const a = new Date(2026, 11, 5, 17, 5).getTime() / 1000
  const splits = [a, a + 300, a + 86400]

  it('use a 24-hour clock, with the date under the first tick and where the day changes', () => {
    const en = axisTimes(splits, 300, 'en')
    expect(en).toEqual(['17:05\n5 Dec', '17:10', '17:05\n6 Dec'])
    for (const l of en) expect(l).not.toMatch(/am|pm/i)
  })

  it('are in Korean when the page is', () => {
    const ko = axisTimes(splits, 300, 'ko')
    expect(ko[0]).toContain('17:05')
    expect(ko[0]).toContain('12월 5일')
    expect(ko.join(' ')).not.toMatch(/[A-Za-z]/)
  })

  it('show seconds for steps under a minute and only dates for steps of a day or more', () => {
    expect(axisTimes([a], 10, 'en')[0].split('\n')[0]).toBe('17:05:00')
    expect(axisTimes([a, a + 86400], 86400, 'en')).toEqual(['5 Dec', '6 Dec'])
  })

  it('name the legend time in the language, and a dash when the cursor is off the chart', () => {
    expect(chartTime(null, 'ko')).toBe('–')
    expect(chartTime(a, 'ko')).toContain('12월 5일')
  })
})
