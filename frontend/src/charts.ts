// ECharts with only the parts the dashboard draws (tree-shaken): line and scatter
// charts on the canvas renderer, with grid, tooltip, brush, toolbox, mark lines and
// the ARIA description for screen readers.
import * as echarts from 'echarts/core';
import { LineChart, LinesChart, ScatterChart } from 'echarts/charts';
import {
  AriaComponent,
  BrushComponent,
  GridComponent,
  MarkLineComponent,
  TooltipComponent,
  ToolboxComponent,
} from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([
  LineChart,
  LinesChart,
  ScatterChart,
  AriaComponent,
  BrushComponent,
  GridComponent,
  MarkLineComponent,
  TooltipComponent,
  ToolboxComponent,
  CanvasRenderer,
]);

export type Chart = echarts.ECharts;
export type ChartOption = echarts.EChartsCoreOption;

/** A chart in `el` that follows the element's size; `dispose` frees both. */
export function makeChart(el: HTMLElement): { chart: Chart; dispose: () => void } {
  const chart = echarts.init(el, undefined, { renderer: 'canvas' });
  const observer = new ResizeObserver(() => chart.resize());
  observer.observe(el);
  return {
    chart,
    dispose() {
      observer.disconnect();
      chart.dispose();
    },
  };
}

export const TEXT_STYLE = { fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', color: '#2b3340' };
