// ECharts with only the parts the planner draws: line series on a time
// axis, tooltip, legend, zoom, and the backtest's mark areas and points.

import { LineChart } from "echarts/charts";
import {
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  MarkAreaComponent,
  MarkPointComponent,
  TooltipComponent,
} from "echarts/components";
import * as echarts from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([LineChart, GridComponent, TooltipComponent, LegendComponent, DataZoomComponent, MarkAreaComponent, MarkPointComponent, CanvasRenderer]);

export { echarts };
export type { EChartsType } from "echarts/core";
