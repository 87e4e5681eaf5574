// Minimal typings for the parts of @xmpp/client (xmpp.js) the tests use; the package ships none.
declare module '@xmpp/client' {
  export interface Element {
    name: string;
    attrs: Record<string, string>;
    children: Array<Element | string>;
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildText(name: string, xmlns?: string): string | null;
    getChildren(name: string, xmlns?: string): Element[];
    toString(): string;
  }
  export interface Client {
    jid: { toString(): string } | null;
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(el: Element): Promise<void>;
    on(event: 'stanza', fn: (el: Element) => void): void;
    on(event: 'online', fn: (jid: { toString(): string }) => void): void;
    on(event: 'error' | 'offline' | 'status', fn: (arg: unknown) => void): void;
    iqCaller: { request(el: Element, timeout?: number): Promise<Element> };
    iqCallee: { get(ns: string, name: string, handler: (ctx: unknown) => unknown): void; set(ns: string, name: string, handler: (ctx: unknown) => unknown): void };
  }
  export function client(opts: {
    service: string;
    domain?: string;
    resource?: string;
    username?: string;
    password?: string;
  }): Client;
  export function xml(name: string, attrs?: Record<string, string | undefined>, ...children: Array<Element | string | null | Array<Element | string>>): Element;
}
