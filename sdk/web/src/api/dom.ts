// The little DOM work of Publisher and Subscriber: resolving a target and showing media in a
// <video> element. Guarded so the rest of the SDK runs where there is no DOM (workers, Node).

export type Target = HTMLElement | string | null | undefined;

export function resolveTarget(target: Target): HTMLElement | null {
  if (typeof document === "undefined" || target === null || target === undefined) return null;
  if (typeof target === "string") return document.getElementById(target);
  return target;
}

export interface MediaView {
  readonly element: HTMLVideoElement;
  destroy(): void;
}

/** Appends a <video> showing `stream` to `target` (or returns null without a DOM). */
export function showMedia(target: HTMLElement | null, stream: MediaStream, opts: { muted: boolean; mirror: boolean; className: string }): MediaView | null {
  if (typeof document === "undefined" || !target) return null;
  const video = document.createElement("video");
  video.className = opts.className;
  video.autoplay = true;
  video.playsInline = true;
  video.muted = opts.muted;
  video.style.width = "100%";
  video.style.height = "100%";
  video.style.objectFit = "cover";
  if (opts.mirror) video.style.transform = "scaleX(-1)";
  video.srcObject = stream;
  target.appendChild(video);
  void video.play().catch(() => undefined); // autoplay policies: the app can call play() on a gesture
  return {
    element: video,
    destroy: () => {
      video.srcObject = null;
      video.remove();
    },
  };
}
